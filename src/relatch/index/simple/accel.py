"""Files sent by a front web server: nginx's ``X-Accel-Redirect`` (RELATCH_ACCEL_REDIRECT).

With ``RELATCH_ACCEL_REDIRECT=/internal-files/``, /files/ answers a request it has already
checked (the project is readable by this requester, not quarantined, the row exists) with an
empty body and ``X-Accel-Redirect: /internal-files/<storage name>``; nginx then sends the file
from its ``internal`` location (an ``alias`` of the files directory) itself, ranges included,
and no Python thread is busy for the length of a download. A client can never ask for that
location: nginx answers 404 to any request for it that does not come from such a header
(``deploy/nginx.conf``, docs/operations.md "Behind nginx").

The headers Relatch decides ride on the empty answer: Content-Type and Cache-Control (nginx
keeps them), ETag, Last-Modified and the CORS and security headers (nginx drops them on an
internal redirect; the shipped config adds them back from ``$upstream_http_*``), so an
installer sees the same answer with and without nginx. Conditional requests are decided here
first (a 304 never reaches nginx), and a Range is left to nginx only when Relatch would answer
it with the same single slice: an unsatisfiable, multiple or ignored range, or a HEAD, is
answered by Relatch as without nginx (nginx would send a cacheable 416 or multipart ranges).

Only storage names that lie inside the file system storage's root are redirected: a name
from a row (an upstream copy's, say) that would climb out of it is sent the ordinary way,
where Django's storage refuses it, never handed to nginx.
"""

import posixpath
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.storage import FileSystemStorage, default_storage
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils.http import content_disposition_header

from relatch.index.simple import ranges
from relatch.index.simple.caching import (
    FILE_CACHE_CONTROL,
    with_cache_headers,
    with_last_modified,
)
from relatch.index.store import downloads as store_downloads

ACCEL_HEADER = "X-Accel-Redirect"


def _is_plain_name(name: str) -> bool:
    """Relative, no empty, ``.`` or ``..`` part, no backslash, NUL or other control
    character: nothing nginx or a file system could read as a way out of the root."""
    if not name or name.startswith("/") or "\\" in name:
        return False
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in name):
        return False
    return all(part not in {"", ".", ".."} for part in name.split("/"))


def internal_uri(storage_name: str) -> str | None:
    """``RELATCH_ACCEL_REDIRECT`` + the percent-encoded ``storage_name``, or None when the
    file must not be redirected: accel off, storage not on this file system, or a name
    outside its root (checked by name and again by Django's ``safe_join``)."""
    prefix = settings.ACCEL_REDIRECT
    if not prefix or not isinstance(default_storage, FileSystemStorage):
        return None
    if not _is_plain_name(storage_name):
        return None
    try:
        full = Path(default_storage.path(storage_name))
    except SuspiciousFileOperation:
        return None
    # Both lexical (FileSystemStorage makes its location and paths absolute without reading
    # links), so a files directory reached through a symlink still compares equal.
    root = Path(default_storage.location)
    if not full.is_relative_to(root) or full == root:
        return None
    relative = posixpath.normpath(full.relative_to(root).as_posix())
    # Every byte outside unreserved characters and "/" encoded: "?" or "#" in a name is not
    # read as a query, "%" not as an escape (nginx decodes the header's URI once).
    return prefix + quote(relative, safe="/")


def _nginx_answers_range(request: HttpRequest, *, storage_name: str, etag: str,
                         last_modified: datetime) -> bool:
    """No Range, or one Relatch would answer with that one slice (206): then nginx's
    answer is Relatch's. Reads the file's size only when a Range is asked for."""
    if "Range" not in request.headers:
        return True
    try:
        size = default_storage.size(storage_name)
    except OSError:
        return False  # answered the ordinary way, which says what is missing
    wanted = ranges.requested_range(request, size=size, etag=etag, last_modified=last_modified)
    return isinstance(wanted, ranges.ByteRange)


def _target(request: HttpRequest, storage_name: str, *, etag: str,
            content_type: str) -> str | None:
    """Where nginx finds the file: the files directory, or the bucket it proxies."""
    if not settings.ACCEL_REDIRECT or not store_downloads.in_bucket():
        return internal_uri(storage_name)
    if not _is_plain_name(storage_name):
        return None
    try:
        return store_downloads.internal_uri(
            storage_name, sha256=etag.strip('"'), content_type=content_type,
            cache_control=store_downloads.store_cache_control(request))
    except OSError:
        return None  # sent the ordinary way, which says the store failed


def accel_response(request: HttpRequest, *, storage_name: str, content_type: str, etag: str,
                   last_modified: datetime) -> HttpResponseBase | None:
    """The empty answer nginx turns into the file, or None: send it the ordinary way. Call
    only after every access check and the conditional-request check."""
    uri = _target(request, storage_name, etag=etag, content_type=content_type)
    if uri is None or not _nginx_answers_range(
        request, storage_name=storage_name, etag=etag, last_modified=last_modified
    ):
        return None
    response = HttpResponse(content_type=content_type)
    response[ACCEL_HEADER] = uri
    # The name as Django's FileResponse gives it, so a browser saves the same file name.
    disposition = content_disposition_header(False, posixpath.basename(storage_name))
    if disposition:
        response["Content-Disposition"] = disposition
    with_last_modified(response, last_modified)
    return with_cache_headers(
        response, etag=etag, cache_control=FILE_CACHE_CONTROL, vary_accept=False
    )
