"""One HTTP request read whole, without blocking, before a thread serves it (issue 18 §3).

``RequestReader`` is what ``relatch.web.worker``'s main loop keeps per connection: it takes
bytes as they arrive, knows when the header and then the body are complete, spools a large
body to an unnamed temporary file, and refuses (``Refusal``) what no endpoint would take or
what comes too slowly. It does no I/O of its own, so its rules are tested without sockets.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from typing import IO

# Bytes of a request kept in memory; the rest of a larger body is spooled to a temporary file.
IN_MEMORY = 256 * 1024
# The largest request header accepted (gunicorn's own limits are per line and per field).
MAX_HEADER = 64 * 1024

_REASONS = {
    400: "Bad Request", 408: "Request Timeout", 411: "Length Required",
    413: "Content Too Large", 417: "Expectation Failed",
    431: "Request Header Fields Too Large", 503: "Service Unavailable",
}


def size_limit_message() -> str:
    """What an upload over RELATCH_MAX_UPLOAD_MB is told (twine prints it): by this reader
    before the body is read, and by the upload view."""
    from django.conf import settings

    limit_mb = settings.MAX_UPLOAD_SIZE // (1024 * 1024)
    return f"File too large: the limit is {limit_mb} MB ({settings.MAX_UPLOAD_SIZE} bytes)."


@dataclass(frozen=True)
class Limits:
    header_timeout: float
    body_timeout: float
    body_min_rate: float
    max_body: int
    too_large: str = "The request body is too large."


class Refusal(Exception):  # noqa: N818  (not an error of ours: the answer to a request)
    """The request cannot be taken; ``status`` and ``message`` are the answer."""

    def __init__(self, status: int, message: str, *, kind: str = "refused") -> None:
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind

    def response(self) -> bytes:
        body = (self.message + "\n").encode()
        reason = _REASONS.get(self.status, "Error")
        if self.status == 413:
            reason = self.message.encode("ascii", "replace").decode()[:300]
        return (f"HTTP/1.1 {self.status} {reason}\r\nConnection: close\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body


class RequestReader:
    """One request as it arrives, until its header and its whole body are in.

    ``feed`` takes bytes as they come and raises ``Refusal`` for a request that will not be
    taken; ``complete`` says when a thread can have it; ``deadline`` is when it is too late.
    Bytes past the end of the request (a pipelined next request) stay with it, in order: the
    thread's parser reads exactly one request and leaves the rest.
    """

    def __init__(self, limits: Limits, now: float, *, fresh: bool) -> None:
        self.limits = limits
        self.head = bytearray()
        self.spool: IO[bytes] | None = None
        self.started = not fresh  # a kept-alive connection gets here with its first byte
        self.deadline = now + limits.header_timeout
        self.header_end = -1
        self.body_length = 0
        self.body_received = 0
        self.body_started = 0.0
        self.complete = False
        self.wants_continue = False  # the client waits for "100 Continue" before its body
        self._searched = 0

    def feed(self, data: bytes, now: float) -> None:
        self.started = True
        if self.header_end < 0:
            self._feed_header(data, now)
        else:
            self._feed_body(data, now)

    def _feed_header(self, data: bytes, now: float) -> None:
        self.head += data
        end = self.head.find(b"\r\n\r\n", max(0, self._searched - 3))
        if end < 0:
            if len(self.head) > MAX_HEADER:
                raise Refusal(431, "The request header is too large.")
            if self.head.count(b"\n") != self.head.count(b"\r\n"):
                # RFC 9112 §2.2: lines end with CRLF; gunicorn refuses a bare LF too.
                raise Refusal(400, "Bad request: a header line ends without CR.")
            self._searched = len(self.head)
            return
        if end > MAX_HEADER:
            raise Refusal(431, "The request header is too large.")
        self.header_end = end + 4
        self.body_length = self._framing(bytes(self.head[:end]))
        self.body_started = now
        self.body_received = len(self.head) - self.header_end
        self._check_body(now)
        self.wants_continue = self.wants_continue and not self.complete

    def _framing(self, header: bytes) -> int:
        """The body's length from Content-Length (the rest is gunicorn's to check)."""
        request_line, *lines = header.removeprefix(b"\r\n").split(b"\r\n")
        length: int | None = None
        for line in lines:
            name, _, value = line.partition(b":")
            name, value = name.lower(), value.strip(b" \t")
            if name == b"content-length":
                if length is not None or not value.isdigit():
                    raise Refusal(400, "Bad request: invalid Content-Length.")
                length = int(value)
            elif name == b"transfer-encoding":
                raise Refusal(411, "Send the request body with a Content-Length.")
            elif name == b"expect":
                if value.lower() != b"100-continue":
                    raise Refusal(417, "Only 'Expect: 100-continue' is understood.")
                self.wants_continue = not request_line.endswith(b"HTTP/1.0")
        if length is not None and length > self.limits.max_body:
            raise Refusal(413, self.limits.too_large)
        self.wants_continue = self.wants_continue and bool(length)
        return length or 0

    def _feed_body(self, data: bytes, now: float) -> None:
        self.body_received += len(data)
        if self.spool is None and len(self.head) + len(data) <= IN_MEMORY:
            self.head += data
        else:
            if self.spool is None:
                self.spool = tempfile.TemporaryFile(prefix="relatch-request-")  # noqa: SIM115
            try:
                self.spool.write(data)
            except OSError as error:
                raise Refusal(503, "The server has no room for this request now; try again "
                                   "later.", kind="spool") from error
        self._check_body(now)

    def _check_body(self, now: float) -> None:
        if self.body_received >= self.body_length:
            self.complete = True
            if self.spool is not None:
                self.spool.flush()
                self.spool.seek(0)
            return
        limits = self.limits
        # No pause longer than body_timeout, and on average body_min_rate after that.
        self.deadline = min(
            now + limits.body_timeout,
            self.body_started + limits.body_timeout + self.body_received / limits.body_min_rate,
        )

    def timeout_kind(self) -> str:
        if not self.started:
            return "idle"
        return "header" if self.header_end < 0 else "body"

    def discard(self) -> None:
        if self.spool is not None:
            self.spool.close()
            self.spool = None
