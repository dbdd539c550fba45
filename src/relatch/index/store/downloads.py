"""Sending a file kept in an S3 bucket, once /files/ has made every access check.

Three ways, by configuration: streamed by Relatch (the default, ``RELATCH_FILES_DOWNLOAD=
stream``, through ``default_storage.open``), a 302 to a presigned URL
(``RELATCH_FILES_DOWNLOAD=redirect``), or proxied by nginx from the store
(``RELATCH_ACCEL_REDIRECT``, :func:`internal_uri`). A presigned URL is short-lived
(``RELATCH_FILES_URL_SECONDS``) and asks the store to answer with Relatch's own Content-Type,
Content-Disposition and Cache-Control, so a client sees the same file either way.
"""

import logging
import posixpath
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils.http import content_disposition_header

from relatch.index.simple import access
from relatch.index.simple.caching import FILE_CACHE_CONTROL
from relatch.index.store.errors import StoreUnavailableError

if TYPE_CHECKING:
    from relatch.index.store.s3 import RelatchS3Storage

log = logging.getLogger(__name__)


def in_bucket() -> bool:
    """Whether distribution files are kept in an S3 bucket (RELATCH_FILES_URL)."""
    # By the setting, not the storage's class: files on disk never import the S3 client.
    return bool(settings.FILES_URL)


def _presigned(storage_name: str, *, content_type: str, cache_control: str) -> str:
    overrides: dict[str, Any] = {"ResponseContentType": content_type,
                                 "ResponseCacheControl": cache_control}
    disposition = content_disposition_header(False, posixpath.basename(storage_name))
    if disposition:
        overrides["ResponseContentDisposition"] = disposition
    bucket = cast("RelatchS3Storage", default_storage)
    return bucket.url(storage_name, parameters=overrides, expire=settings.FILES_URL_SECONDS)


def store_cache_control(request: HttpRequest) -> str:
    """The Cache-Control the store is asked to answer with: the file's, private when Relatch's
    own answer would be (a reader's file must not be kept by a shared cache for others)."""
    if not access.is_kept_private(request):
        return FILE_CACHE_CONTROL
    return FILE_CACHE_CONTROL.replace("public", "private")


def internal_uri(storage_name: str, *, sha256: str, content_type: str,
                 cache_control: str) -> str:
    """What nginx proxies from the store: ``RELATCH_ACCEL_REDIRECT`` + the file's digest (its
    ETag, which nginx puts back) + the presigned URL's path and query. The URL is presigned
    for the store's address as nginx reaches it (deploy/nginx.conf, ``relatch_store``)."""
    url = urlsplit(_presigned(storage_name, content_type=content_type,
                              cache_control=cache_control))
    return f"{settings.ACCEL_REDIRECT}{sha256}{url.path}?{url.query}"


def redirect_response(request: HttpRequest, storage_name: str, *,
                      content_type: str) -> HttpResponseBase | None:
    """A 302 to a presigned URL (RELATCH_FILES_DOWNLOAD=redirect), or None: stream it."""
    if settings.FILES_DOWNLOAD != "redirect" or not in_bucket():
        return None
    # The URL expires: the file's own year-long caching is asked of the store's answer, but
    # this redirect must never be kept by a cache and replayed after the URL has died.
    location = _presigned(storage_name, content_type=content_type,
                          cache_control=store_cache_control(request))
    response = HttpResponse(status=302)
    response["Location"] = location
    response["Cache-Control"] = "no-store"
    return response


def unavailable_response(error: StoreUnavailableError) -> HttpResponse:
    """503 saying it is the file store that failed (the row is there; nothing is lost).
    The store's address and error go to the log, not to the client."""
    log.warning("download refused: %s", error)
    response = HttpResponse(
        "The file store is unavailable; try again shortly.\n", status=503,
        content_type="text/plain; charset=utf-8")
    response["Retry-After"] = "10"
    response["Cache-Control"] = "no-store"
    return response

