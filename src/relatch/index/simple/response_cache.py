"""Whole responses for /simple/, /simple/<project>/ and small files, kept in each web process.

Installers ask for the same few pages and files over and over, and between two changes the
answer is the same bytes. Even on the lean path and with the page body cached, Django's handler
(request object, URL resolution, middleware, signals, response headers) costs about ten times
the one lookup that says whether the page changed. ``ResponseCache`` wraps the WSGI application
and keeps the status, headers and body Django sent for a GET, with the page's change marker
read just before Django built it; a later identical request whose marker reads
the same gets those bytes without entering Django. A file over MAX_RESPONSE_BYTES is never
kept and keeps gunicorn's sendfile.

Why a kept response is never stale or wrong for its request:

- The marker is what the page's ETag is made of (``relatch.index.changes``): a project's id,
  name and generation, or the index's epoch and generation, which grow in the transaction of
  every change; for a file, its row (storage name, digest, type). The serials a page's
  X-PyPI-Last-Serial header says are in it too (the project's; for /simple/ the global one,
  which moves with changes that leave the list alone). It is read before Django
  reads anything, so a response is kept under a marker no newer than the data it shows.
- A hit reads the marker again unless the index's change stamp (``relatch.index.change_stamp``),
  which every committed change rewrites, still holds the value read before the marker's last
  read, and that read is under TRUST_SECONDS old. Reading the database on every hit cost more
  than the rest of the hit, and its release of the GIL made the tail latency; the bound covers
  a change the stamp cannot show (a hand-made edit; another host's while this process's
  listener for its notifications is not connected: ``relatch.index.change_listener``).
- The key holds everything of the request the response depends on: path, ``Accept``,
  ``If-None-Match``, host and scheme headers. A host Django refuses gets a 400, which is never
  kept, so host validation still runs for every new host.
- Only an anonymous request in public read mode is answered or recorded (no Authorization,
  no Cookie: relatch.index.simple.access), and only a complete 200 or 304 that sets no
  cookie, is not private or no-store and varies on nothing but ``Accept`` is kept. A
  project made private changes its marker (ProjectState.private, StoredFile's too), so a
  response kept while it was public is not sent after. Other conditional requests, HEAD,
  query strings and every other path go to Django as before.
"""

import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

from django.conf import settings
from django.db import DatabaseError, connection

from relatch.index.change_stamp import ChangeStamp, index_change_stamp
from relatch.index.simple import queries, views
from relatch.web.health.metrics import KEPT_HIT, KEPT_MISS, UNMATCHED, count_request
from relatch.web.health.middleware import ROUTE_KEY

type WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
type Key = tuple[str | None, ...]
type Marker = tuple[object, ...]

_FILES = "/files/"
_PROJECT_PAGE = re.compile(r"/simple/([a-z0-9]+(?:-[a-z0-9]+)*)/", re.ASCII)
# What of a request the kept response may depend on (besides the path): content negotiation,
# the ETag a client already holds (pip revalidates its cached pages with If-None-Match: the
# 304 Django gives is kept like a 200), and what host validation, HTTPS redirects and HSTS read.
_KEY_HEADERS = (
    "HTTP_ACCEPT", "HTTP_IF_NONE_MATCH", "HTTP_HOST", "SERVER_NAME", "SERVER_PORT",
    "wsgi.url_scheme", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PORT", "SCRIPT_NAME",
)
# A request with any of these needs Django's own judgement (a 412, a range), every time.
_CONDITIONAL_HEADERS = (
    "HTTP_IF_MODIFIED_SINCE", "HTTP_IF_MATCH", "HTTP_IF_UNMODIFIED_SINCE", "HTTP_IF_RANGE",
    "HTTP_RANGE",
)
# Bounds, so varied Accept or Host headers cannot grow a process without end: past them the
# least recently served responses go.
MAX_TOTAL_BYTES = 32 * 1024 * 1024
MAX_RESPONSE_BYTES = 2 * 1024 * 1024
# How long a kept response is sent on an unchanged stamp alone before the database is asked
# again: the most a change the stamp misses (another host's while the change listener is not
# connected, a hand edit, a kill between commit and stamp) can stay unseen. Pages already
# tell clients and proxies to keep them for 60 s.
TRUST_SECONDS = 1.0
# About what Python spends on one entry's objects besides their text (tuples, list, dict slot).
ENTRY_OVERHEAD = 512


class KeptResponse(NamedTuple):
    marker: Marker
    status: str
    headers: list[tuple[str, str]]
    chunks: list[bytes]
    size: int
    # The change stamp read just before the marker was last read from the database, and when.
    stamp: int | None = None
    checked_at: float = -math.inf
    route: str = UNMATCHED  # the URL name its hits are counted under (relatch.web.health)

    def is_trusted(self, stamp: int | None, now: float) -> bool:
        """Sendable without reading the marker: no index change has committed on this host
        since the last read, and that read is recent enough to cover a change the stamp
        missed (see ``relatch.index.change_stamp``)."""
        return stamp is not None and stamp == self.stamp and now - self.checked_at < TRUST_SECONDS


class Check(NamedTuple):
    """One read of a page's marker, with the stamp read before it."""

    marker: Marker
    stamp: int | None
    checked_at: float


def page_marker(path: str) -> Marker | None:
    """The change marker of the page or file at ``path``; None when the path is not one that
    is kept or names nothing. Reads one row (two for a file's PEP 658 metadata)."""
    if path == "/simple/":
        return ("index", *queries.index_version())
    if (match := _PROJECT_PAGE.fullmatch(path)) and (state := queries.project_state(match[1])):
        return ("project", *state)
    if path.startswith(_FILES) and (found := views.find_download(path.removeprefix(_FILES))):
        # A file's path holds its digest and a file name is never reused: the row's being
        # there is all that can change (a release deleted).
        return ("file", *found)
    return None


def request_key(environ: dict[str, Any]) -> Key | None:
    """The key of a GET of a kept page or file; None for any other request."""
    if environ.get("REQUEST_METHOD") != "GET" or environ.get("QUERY_STRING"):
        return None
    if not _may_be_shared(environ):
        return None
    path = environ.get("PATH_INFO", "")
    if not path.startswith(("/simple/", _FILES)):
        return None
    if any(name in environ for name in _CONDITIONAL_HEADERS):
        return None
    return (path, *(environ.get(name) for name in _KEY_HEADERS))


def _may_be_shared(environ: dict[str, Any]) -> bool:
    """Whether the answer to this request can be the same for every requester. Not with
    credentials or cookies (a token, a session: what such a request is shown depends on who
    sent it; relatch.index.simple.access), and never when RELATCH_READ_ACCESS is
    authenticated (every answer there needs a reader, and a kept one would skip the check)."""
    if "HTTP_AUTHORIZATION" in environ or "HTTP_COOKIE" in environ:
        return False
    return bool(settings.READ_ACCESS == "public")


def is_keepable(status: str, headers: list[tuple[str, str]]) -> bool:
    """A 200 or 304 for anyone: it sets no cookie, varies on ``Accept`` (in the key) at
    most, and is not marked private or no-store (an answer that needed a reader is both
    private and varies on Authorization and Cookie: a second guard besides the key)."""
    if not status.startswith(("200 ", "304 ")):
        return False
    for name, value in headers:
        lowered = name.lower()
        if lowered == "set-cookie":
            return False
        if lowered == "cache-control" and _is_private(value):
            return False
        if lowered == "vary" and {v.strip().lower() for v in value.split(",")} - {"accept"}:
            return False
        if lowered == "x-accel-redirect" and "?" in value:
            # A bucket file's presigned URL (relatch.index.store.downloads): it dies after
            # RELATCH_FILES_URL_SECONDS, and a kept copy sent later gets the store's 403.
            return False
    return True


def _is_private(cache_control: str) -> bool:
    directives = {part.strip().split("=", 1)[0].lower() for part in cache_control.split(",")}
    return bool(directives & {"private", "no-store"})


class ResponseStore:
    """Kept responses by key, least recently served first out, within MAX_TOTAL_BYTES."""

    def __init__(self, max_total: int = MAX_TOTAL_BYTES) -> None:
        self.max_total = max_total
        self.total = 0
        self._entries: OrderedDict[Key, KeptResponse] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Key) -> KeptResponse | None:
        with self._lock:
            kept = self._entries.get(key)
            if kept is not None:
                self._entries.move_to_end(key)
            return kept

    def put(self, key: Key, kept: KeptResponse) -> None:
        with self._lock:
            self._discard(key)
            self._entries[key] = kept
            self.total += kept.size
            while self.total > self.max_total:
                self._discard(next(iter(self._entries)))

    def discard(self, key: Key) -> None:
        with self._lock:
            self._discard(key)

    def _discard(self, key: Key) -> None:
        if (old := self._entries.pop(key, None)) is not None:
            self.total -= old.size

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.total = 0

    def __len__(self) -> int:
        return len(self._entries)


class _Recorder:
    """Passes the application's response through while recording it; keeps it, on close,
    only if it was sent whole and within MAX_RESPONSE_BYTES."""

    def __init__(self, result: Iterable[bytes], keep: Callable[[list[bytes], int], None]) -> None:
        self.result, self.keep = result, keep
        self.chunks: list[bytes] | None = []
        self.size = 0
        self.complete = False

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.result:
            self._record(chunk)
            yield chunk
        self.complete = True

    def _record(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.chunks is not None and self.size <= MAX_RESPONSE_BYTES:
            self.chunks.append(chunk)
        else:
            self.chunks = None

    def close(self) -> None:
        try:
            getattr(self.result, "close", lambda: None)()
        finally:
            if self.complete and self.chunks is not None:
                self.keep(self.chunks, self.size)


# The web process's responses (one store per process: gunicorn's workers share nothing).
kept_responses = ResponseStore()


class ResponseCache:
    """WSGI application: kept responses for unchanged index pages, ``app`` for the rest."""

    def __init__(self, app: WSGIApp, store: ResponseStore = kept_responses,
                 stamp: ChangeStamp | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.app, self.store, self.clock = app, store, clock
        self.stamp = stamp or index_change_stamp()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        key = request_key(environ)
        if key is None:
            return self.app(environ, start_response)
        # The stamp first: a change it does not show yet commits after this read, so the
        # marker read below, or a later stamp, shows it.
        stamp, now = self.stamp.read(), self.clock()
        kept = self.store.get(key)
        if kept is not None and kept.is_trusted(stamp, now):
            return _send_counted(kept, start_response)
        try:
            marker = _current_marker(environ["PATH_INFO"])
        except DatabaseError:
            # Django's handler reports the error and, on its next request, replaces the
            # connection that raised it.
            KEPT_MISS.inc()
            return self.app(environ, start_response)
        if kept is not None and kept.marker == marker:
            self.store.put(key, kept._replace(stamp=stamp, checked_at=now))
            return _send_counted(kept, start_response)
        # Django answers it, and RequestMetricsMiddleware counts the request.
        KEPT_MISS.inc()
        if kept is not None:
            self.store.discard(key)
        if marker is None:  # no such project: Django's 404, never kept
            return self.app(environ, start_response)
        return self._record(environ, start_response, key, Check(marker, stamp, now))

    def _record(self, environ: dict[str, Any], start_response: Callable[..., Any], key: Key,
                check: Check) -> Iterable[bytes]:
        sent: dict[str, Any] = {}

        def recording_start_response(status: str, headers: list[tuple[str, str]],
                                     exc_info: Any = None) -> Any:
            sent.update(status=status, headers=list(headers), failed=exc_info is not None)
            return start_response(status, headers, exc_info)

        def keep(chunks: list[bytes], body_size: int) -> None:
            if sent.get("failed") is False and is_keepable(sent["status"], sent["headers"]):
                size = entry_size(key, sent["headers"], body_size)
                self.store.put(key, KeptResponse(check.marker, sent["status"], sent["headers"],
                                                 chunks, size, check.stamp, check.checked_at,
                                                 environ.get(ROUTE_KEY, UNMATCHED)))

        result = self.app(environ, recording_start_response)
        if _declared_length(sent.get("headers", [])) > MAX_RESPONSE_BYTES:
            return result  # too big to keep: gunicorn's sendfile for a large file stays
        return _Recorder(result, keep)


def entry_size(key: Key, headers: list[tuple[str, str]], body_size: int) -> int:
    """What a kept response is counted as against MAX_TOTAL_BYTES: its body, and its key and
    headers, which a client chooses in part: a 304's body is empty, so a flood of distinct
    If-None-Match values would otherwise be kept without limit."""
    return (ENTRY_OVERHEAD + body_size + sum(len(part) for part in key if part)
            + sum(len(name) + len(value) for name, value in headers))


def _send(kept: KeptResponse, start_response: Callable[..., Any]) -> list[bytes]:
    start_response(kept.status, list(kept.headers))
    return kept.chunks


def _send_counted(kept: KeptResponse, start_response: Callable[..., Any]) -> list[bytes]:
    """Send a kept response and count it as a hit, and as a request under its URL name
    (a hit never reaches RequestMetricsMiddleware). Not timed: a hit takes some ten
    microseconds, counting it about four, and timing it would cost as much again."""
    KEPT_HIT.inc()
    count_request(kept.route, kept.status)
    return _send(kept, start_response)


def _declared_length(headers: list[tuple[str, str]]) -> int:
    for name, value in headers:
        if name.lower() == "content-length" and value.isdigit():
            return int(value)
    return 0


def _current_marker(path: str) -> Marker | None:
    # Django closes a connection past CONN_MAX_AGE, or one that failed, when a request starts;
    # a hit never enters Django, so it does the same here before its one query.
    connection.close_if_unusable_or_obsolete()
    return page_marker(path)
