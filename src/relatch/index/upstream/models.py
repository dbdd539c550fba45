"""Kept upstream pages and stored upstream files (loaded by ``relatch.index.models``)."""

from typing import ClassVar

from django.db import models
from django.utils import timezone


class UpstreamPage(models.Model):
    """The upstream's page of a project with no local project, as last fetched.

    ``data`` is what Relatch serves from (``relatch.index.upstream.pages``): only files with
    a SHA-256, their upstream URLs without credentials."""

    normalized_name = models.CharField(max_length=200, unique=True)
    data = models.JSONField(default=dict)
    # The upstream's ETag, sent back as If-None-Match when the page is revalidated.
    etag = models.CharField(max_length=500, blank=True)
    # SHA-256 of ``data``: the source of the ETag Relatch gives the page.
    digest = models.CharField(max_length=64)
    # When the upstream last confirmed the page (a 200 or a 304).
    fetched_at = models.DateTimeField(default=timezone.now)

    class Meta:
        app_label = "index"
        ordering: ClassVar = ["normalized_name"]

    def __str__(self) -> str:
        return f"upstream page {self.normalized_name}"


class UpstreamFile(models.Model):
    """An upstream file (or its PEP 658 metadata) fetched once, checked and stored: served
    from storage from then on, with no upstream contact."""

    # What follows /files/ in its URL: upstream/<project>/<sha256>/<filename>[.metadata].
    url_path = models.CharField(max_length=600, unique=True)
    # Its own storage name (a random part per fetch: two first downloads at once each store
    # their copy, and the one whose row loses the unique url_path deletes its copy).
    storage_name = models.CharField(max_length=700)
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField()
    project_name = models.CharField(max_length=200)
    stored_at = models.DateTimeField(default=timezone.now)

    class Meta:
        app_label = "index"
        ordering: ClassVar = ["url_path"]

    def __str__(self) -> str:
        return self.url_path
