"""Byte ranges on /files/ (RFC 9110 §14): an interrupted download resumes where it stopped.

One range per request: ``bytes=a-b``, ``bytes=a-`` and ``bytes=-n``. A request for several
ranges gets the whole file (200), which RFC 9110 §14.2 allows ("a server MAY ignore the Range
header field"): installers resume with one range, and multipart/byteranges would only give a
client a way to make the server read the same bytes many times over. A header that does not
parse is ignored the same way. Ranges apply to GET only (§14.2: HEAD is answered as a 200).

The slice is read from storage as it is sent, never the whole file into memory; on gunicorn
the slice goes out by sendfile (it sends Content-Length bytes from the file's position).
"""

import re
from datetime import datetime
from typing import NamedTuple

from django.core.files import File
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseBase
from django.utils.http import parse_http_date_safe

from relatch.index.simple.caching import (
    FILE_CACHE_CONTROL,
    with_cache_headers,
    with_last_modified,
)

# At most one range, digits only: "bytes=12-", "bytes=12-34", "bytes=-34" (whitespace allowed
# around it, RFC 9110 §5.6.3). Anything else (other units, lists, signs) is not honoured.
_SINGLE_RANGE = re.compile(
    r"[ \t]*bytes[ \t]*=[ \t]*(\d*)[ \t]*-[ \t]*(\d*)[ \t]*", re.ASCII | re.IGNORECASE
)
# Longer numbers than any file could need are refused before int() sees them.
_MAX_DIGITS = 19
BLOCK_SIZE = 64 * 1024


class ByteRange(NamedTuple):
    """Bytes ``start`` to ``end`` of a file, both included (as Content-Range counts)."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


class Unsatisfiable(NamedTuple):
    """A well-formed range that names no byte of the file: 416."""


UNSATISFIABLE = Unsatisfiable()
type Requested = ByteRange | Unsatisfiable | None


def parse_range(header: str, size: int) -> Requested:
    """The range ``header`` asks of a file of ``size`` bytes: a ByteRange, UNSATISFIABLE, or
    None (no header, several ranges, or nonsense: send the whole file)."""
    match = _SINGLE_RANGE.fullmatch(header)
    if match is None or max(len(match[1]), len(match[2])) > _MAX_DIGITS:
        return None
    first, last = match[1], match[2]
    if not first:
        return _suffix(int(last), size) if last else None
    start = int(first)
    if last and int(last) < start:
        return None  # "bytes=5-2" is invalid (§14.1.1): ignored, not unsatisfiable
    if start >= size:
        return UNSATISFIABLE
    return ByteRange(start, min(int(last), size - 1) if last else size - 1)


def _suffix(length: int, size: int) -> Requested:
    """``bytes=-n``: the last n bytes (all of them when the file is shorter)."""
    if length == 0 or size == 0:
        return UNSATISFIABLE
    return ByteRange(max(0, size - length), size - 1)


def if_range_holds(request: HttpRequest, *, etag: str, last_modified: datetime) -> bool:
    """RFC 9110 §13.1.5: no If-Range, or one naming this file's ETag (strong comparison)
    or its exact Last-Modified date. Otherwise the client holds other bytes than these and
    must get the whole file, not a slice to glue to the wrong start."""
    value = request.headers.get("If-Range")
    if value is None:
        return True
    value = value.strip()
    if value.startswith('"'):
        return value == etag  # a weak tag (W/"...") never matches: it does not start with '"'
    moment = parse_http_date_safe(value)
    return moment is not None and moment == int(last_modified.timestamp())


def requested_range(
    request: HttpRequest, *, size: int, etag: str, last_modified: datetime
) -> Requested:
    """The range to answer with, given the request's Range and If-Range; None: the whole."""
    header = request.headers.get("Range")
    if header is None or request.method != "GET":
        return None
    if not if_range_holds(request, etag=etag, last_modified=last_modified):
        return None
    return parse_range(header, size)


class Slice:
    """Reads at most ``length`` bytes of ``handle`` from its current position (which the
    caller has set). ``fileno`` lets gunicorn sendfile those bytes: it sends Content-Length
    bytes from the descriptor's position."""

    def __init__(self, handle: File, length: int) -> None:
        self.handle, self.left = handle, length

    def read(self, size: int = -1) -> bytes:
        wanted = self.left if size < 0 else min(size, self.left)
        data = self.handle.read(wanted) if wanted > 0 else b""
        self.left -= len(data)
        return data

    def fileno(self) -> int:
        return self.handle.fileno()

    def close(self) -> None:
        self.handle.close()


def partial_response(handle: File, byte_range: ByteRange, *, size: int,
                     content_type: str) -> FileResponse:
    """206 with ``byte_range`` of the open file ``handle``, streamed from storage."""
    handle.seek(byte_range.start)
    response = FileResponse(Slice(handle, byte_range.length), content_type=content_type)
    response.block_size = BLOCK_SIZE
    response.status_code = 206
    response["Content-Length"] = str(byte_range.length)
    response["Content-Range"] = byte_range.content_range(size)
    return response


def unsatisfiable_response(size: int) -> HttpResponse:
    """416 with the file's size, so the client knows where it stands (§15.5.17)."""
    response = HttpResponse(
        "Range Not Satisfiable\n", status=416, content_type="text/plain; charset=utf-8"
    )
    response["Content-Range"] = f"bytes */{size}"
    return response


def file_response(request: HttpRequest, handle: File, *, content_type: str, etag: str,
                  last_modified: datetime) -> HttpResponseBase:
    """The open stored file ``handle`` as /files/ sends it: whole (200), the one range asked
    for (206) or 416, with ``Accept-Ranges`` and the file's validators."""
    size = handle.size
    wanted = requested_range(request, size=size, etag=etag, last_modified=last_modified)
    if wanted is UNSATISFIABLE:
        handle.close()
        # Not the file's year-long public caching: a shared cache must not keep a 416 and
        # send it to requests without a Range.
        response: HttpResponseBase = unsatisfiable_response(size)
        response["Cache-Control"] = "no-store"
        return response
    if isinstance(wanted, ByteRange):
        response = partial_response(handle, wanted, size=size, content_type=content_type)
    else:
        response = FileResponse(handle, content_type=content_type)
    response["Accept-Ranges"] = "bytes"
    with_last_modified(response, last_modified)
    return with_cache_headers(
        response, etag=etag, cache_control=FILE_CACHE_CONTROL, vary_accept=False
    )
