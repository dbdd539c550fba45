"""ETags and cache headers shared by the installer-facing views."""

import hashlib
import time
from collections.abc import Iterable, Iterator
from datetime import datetime

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils.cache import patch_vary_headers
from django.utils.http import http_date, parse_etags, parse_http_date_safe

# Index pages change on upload and yank: a minute of staleness spares the database most polls.
INDEX_CACHE_CONTROL = "public, max-age=60"
# A file name is never reused (UsedFilename), so the bytes behind a URL never change.
FILE_CACHE_CONTROL = "public, max-age=31536000, immutable"


def make_etag(*parts: object) -> str:
    """A strong ETag (quoted) derived from ``parts``; equal parts, equal tag."""
    digest = hashlib.sha256("\x1f".join(str(part) for part in parts).encode()).hexdigest()
    return f'"{digest[:32]}"'


def quoted(value: str) -> str:
    return f'"{value}"'


def is_fresh(request: HttpRequest, etag: str) -> bool:
    """The client's ``If-None-Match`` already names ``etag`` (or ``*``)."""
    tags = parse_etags(request.headers.get("If-None-Match", ""))
    return "*" in tags or etag in tags or f"W/{etag}" in tags


def is_not_modified(request: HttpRequest, *, etag: str, last_modified: datetime | None) -> bool:
    """The client's copy is current (RFC 9110 §13.2.2): by ``If-None-Match`` when it sends
    one, else by ``If-Modified-Since`` against ``last_modified`` (None: never by date).
    An ETag the client holds decides alone: a date cannot tell two changes in one second
    apart, a tag can."""
    if "If-None-Match" in request.headers:
        return is_fresh(request, etag)
    since = parse_http_date_safe(request.headers.get("If-Modified-Since", ""))
    return since is not None and last_modified is not None and (
        int(last_modified.timestamp()) <= since
    )


def settled(moment: datetime, now: float | None = None) -> datetime | None:
    """``moment`` as a page's Last-Modified, or None while it is in the current second: a
    second change within that second would carry the same date, and a client holding the
    first page would be told (304) that it is current (RFC 9110 §8.8.2.2). Files need no
    such care: their bytes never change."""
    current = int(time.time() if now is None else now)
    return moment if int(moment.timestamp()) < current else None


def with_last_modified(
    response: HttpResponseBase, last_modified: datetime | None
) -> HttpResponseBase:
    """``Last-Modified`` on a 200 or 206 (a 304 carries the ETag, which is enough)."""
    if last_modified is not None:
        response["Last-Modified"] = http_date(last_modified.timestamp())
    return response


def with_cache_headers(
    response: HttpResponseBase, *, etag: str, cache_control: str, vary_accept: bool = True
) -> HttpResponseBase:
    response["ETag"] = etag
    response["Cache-Control"] = cache_control
    if vary_accept:
        patch_vary_headers(response, ["Accept"])
    return response


def not_modified(*, etag: str, cache_control: str, vary_accept: bool = True) -> HttpResponseBase:
    """A 304 carrying the headers a cache refreshes from it (RFC 9110 15.4.5)."""
    response = HttpResponse(status=304)
    del response["Content-Type"]
    return with_cache_headers(
        response, etag=etag, cache_control=cache_control, vary_accept=vary_accept
    )


def batched(chunks: Iterable[str], size: int = 64 * 1024) -> Iterator[bytes]:
    """Join small text chunks into blocks of about ``size`` bytes: one write per block, not
    one per project, when the list of 200 000 projects is streamed."""
    buffer: list[bytes] = []
    length = 0
    for chunk in chunks:
        data = chunk.encode()
        buffer.append(data)
        length += len(data)
        if length >= size:
            yield b"".join(buffer)
            buffer, length = [], 0
    if buffer:
        yield b"".join(buffer)
