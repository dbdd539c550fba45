"""Trusted publishers and the OIDC tokens already exchanged (loaded by ``relatch.index.models``).

A publisher says: a CI job whose OIDC token comes from ``issuer`` and names ``repository``,
``workflow`` (and ``environment``, when set) may publish to ``project``. A *pending* publisher
has no project yet, only ``pending_name``: its first exchange creates the project, owned by
``added_by`` (PyPI's pending publishers). Publishers are never deleted, only ``removed_at``:
files and events keep naming the publisher that uploaded them.
"""

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class TrustedPublisher(models.Model):
    """A CI identity allowed to exchange its OIDC token for a 15-minute upload token."""

    class Dialect(models.TextChoices):
        # Claims as GitHub Actions names them (also Forgejo and Gitea Actions):
        # repository, repository_id, repository_owner_id, job_workflow_ref, environment.
        GITHUB = "github", "GitHub Actions"
        # Claims as GitLab CI/CD names them: project_path, project_id, namespace_id,
        # ci_config_ref_uri, environment.
        GITLAB = "gitlab", "GitLab CI/CD"

    project = models.ForeignKey(
        "index.Project", on_delete=models.CASCADE, null=True, blank=True,
        related_name="trusted_publishers",
    )
    # Pending publishers only: the name as the owner typed it, and its PEP 503 form.
    pending_name = models.CharField(max_length=200, blank=True)
    pending_normalized_name = models.CharField(max_length=200, blank=True)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="trusted_publishers"
    )
    # The issuer URL exactly as the tokens' ``iss`` claim spells it.
    issuer = models.CharField(max_length=300)
    dialect = models.CharField(max_length=10, choices=Dialect.choices)
    # "owner/repo" (GitHub) or "group/subgroup/project" (GitLab), stored lower-case: both
    # hosts treat these paths case-insensitively.
    repository = models.CharField(max_length=300)
    # The workflow file name (GitHub: release.yml under .github/workflows/) or the CI
    # configuration path (GitLab: .gitlab-ci.yml).
    workflow = models.CharField(max_length=300)
    # Empty: any environment, or none.
    environment = models.CharField(max_length=100, blank=True)
    # The repository's and its owner's immutable ids (GitHub repository_id and
    # repository_owner_id; GitLab project_id and namespace_id). Empty until the first
    # exchange pins them, unless the owner typed them: a repository deleted and re-created
    # under the same name has new ids, so it does not inherit the right to publish.
    repository_id = models.CharField(max_length=64, blank=True)
    owner_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "index"
        ordering: ClassVar = ["-created_at", "-id"]
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=(Q(project__isnull=False, pending_normalized_name="")
                           | (Q(project__isnull=True) & ~Q(pending_normalized_name=""))),
                name="publisher_project_or_pending_name",
            ),
            models.UniqueConstraint(
                fields=["project", "issuer", "repository", "workflow", "environment"],
                condition=Q(removed_at__isnull=True, project__isnull=False),
                name="publisher_unique_per_project",
            ),
            models.UniqueConstraint(
                fields=["pending_normalized_name", "issuer", "repository", "workflow",
                        "environment"],
                condition=Q(removed_at__isnull=True, project__isnull=True),
                name="publisher_unique_pending",
            ),
        ]
        indexes: ClassVar = [
            # The exchange looks publishers up by issuer and repository.
            models.Index(fields=["issuer", "repository"], name="publisher_issuer_repo"),
        ]

    def __str__(self) -> str:
        return f"{self.get_dialect_display()} {self.repository} {self.workflow}"

    @property
    def is_pending(self) -> bool:
        return self.project_id is None


class UsedOIDCToken(models.Model):
    """An OIDC token already exchanged: its ``jti`` may never be exchanged again.

    Kept until ``keep_until`` (the token's ``exp`` plus the leeway the check allows, and some
    margin): a replay lock that ended before the leeway closed would let the same token be
    exchanged twice (PyPI's audit, TOB-PYPI26-1). The unique constraint is the check: the
    insert either wins or fails, with no gap between looking and recording (TOB-PYPI26-2).
    """

    issuer = models.CharField(max_length=300)
    jti = models.CharField(max_length=200)
    used_at = models.DateTimeField(default=timezone.now)
    keep_until = models.DateTimeField(db_index=True)

    class Meta:
        app_label = "index"
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["issuer", "jti"], name="used_oidc_token_once"),
        ]

    def __str__(self) -> str:
        return f"used OIDC token {self.jti}"
