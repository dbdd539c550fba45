"""Talking to the upstream index over HTTP: the only code here that opens connections.

Every read is bounded (a page by MAX_PAGE_BYTES, a file by the caller's limit) and streamed,
so a hostile or broken upstream can neither fill memory nor the disk. Only http(s) is ever
requested, redirects included. The upstream's credentials (userinfo in RELATCH_UPSTREAM)
go only to the upstream's own origin, and never into a log line or a kept row.
"""

import hashlib
import ssl
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO
from urllib.parse import urlsplit, urlunsplit

import httpx
from django.conf import settings

from relatch.index.upload.temp_files import upload_temp_dir

# PEP 691 first; PEP 503 HTML from upstreams that have nothing else (pypiserver, old devpi).
PAGE_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, "
    "text/html;q=0.01"
)
# numpy's page on PyPI is about 2 MB of JSON; far above any real page.
MAX_PAGE_BYTES = 20 * 1024 * 1024
MAX_REDIRECTS = 5
USER_AGENT = "Relatch (upstream index proxy)"
CHUNK_SIZE = 256 * 1024
# Page fetches at once, per process (gunicorn's eight threads per worker): a flood of names
# with no local project (made-up ones included) keeps at most this many connections open to
# the upstream, so Relatch cannot be made to hammer it, and some threads stay free for local
# names. A fetch waits at most PAGE_SLOT_WAIT for a turn (uv asks for dozens of pages at
# once: they queue briefly), then fails like an upstream outage (stale page or 502).
MAX_PAGE_FETCHES = 4
PAGE_SLOT_WAIT = 5.0
_page_slots = threading.BoundedSemaphore(MAX_PAGE_FETCHES)


class UpstreamError(Exception):
    """The upstream did not give a usable answer (down, timeout, 5xx, too big, bad redirect)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UpstreamNotFoundError(UpstreamError):
    """The upstream answered 404 (or 410): it has no such page or file."""


@dataclass(frozen=True)
class PageAnswer:
    """A 200 (``body`` set) or a 304 (``body`` None) for a page."""

    body: bytes | None
    content_type: str
    etag: str
    url: str  # the page's final URL, after redirects: relative links resolve against it


@dataclass(frozen=True)
class Fetched:
    """A file read whole into ``handle`` (at position 0), with its digest and size."""

    handle: IO[bytes]
    sha256: str
    size: int


def without_credentials(url: str) -> str:
    """``url`` with any user:password@ removed: what is kept and logged."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port


def _auth_for(url: str) -> httpx.BasicAuth | None:
    """The upstream's own credentials, for its own origin only: a file on another host
    (files.pythonhosted.org, a CDN) never sees them."""
    upstream = urlsplit(settings.UPSTREAM_URL)
    if upstream.username is None or _origin(url) != _origin(settings.UPSTREAM_URL):
        return None
    return httpx.BasicAuth(upstream.username, upstream.password or "")


def _refuse_other_schemes(request: httpx.Request) -> None:
    # Every request, redirects included: a redirect to file:, ftp: or anything else is not
    # followed (httpx would refuse most, this refuses all, with a reason to log).
    if request.url.scheme not in {"http", "https"}:
        raise UpstreamError(f"redirected to a {request.url.scheme}: URL")


def _client() -> httpx.Client:
    # The machine's trust store (OpenSSL's default paths, SSL_CERT_FILE and SSL_CERT_DIR), not
    # certifi's copy: an operator whose network re-signs TLS adds its CA there, as for pip.
    return httpx.Client(
        timeout=settings.UPSTREAM_TIMEOUT, follow_redirects=True, max_redirects=MAX_REDIRECTS,
        headers={"User-Agent": USER_AGENT}, event_hooks={"request": [_refuse_other_schemes]},
        trust_env=False, verify=ssl.create_default_context(),
    )


@contextmanager
def _get(url: str, headers: dict[str, str]) -> Iterator[httpx.Response]:
    """A streamed GET of ``url``; every transport failure becomes UpstreamError."""
    try:
        with _client() as client, client.stream(
            "GET", without_credentials(url), headers=headers, auth=_auth_for(url)
        ) as response:
            yield response
    except httpx.HTTPError as error:
        raise UpstreamError(f"{type(error).__name__}: {error}") from None
    except httpx.InvalidURL as error:
        raise UpstreamError(f"invalid URL: {error}") from None


def _check_status(response: httpx.Response, allowed: set[int]) -> None:
    if response.status_code in {404, 410}:
        raise UpstreamNotFoundError(f"HTTP {response.status_code}")
    if response.status_code not in allowed:
        raise UpstreamError(f"HTTP {response.status_code}")


def _check_length(response: httpx.Response, limit: int) -> None:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise UpstreamError(f"{declared} bytes, above the limit of {limit}")


def fetch_page(url: str, *, etag: str = "") -> PageAnswer:
    """GET a project page, revalidating with ``etag`` when given (a 304 has no body).

    Raises UpstreamNotFoundError on 404/410 and UpstreamError on anything else unusable."""
    headers = {"Accept": PAGE_ACCEPT}
    if etag:
        headers["If-None-Match"] = etag
    if not _page_slots.acquire(timeout=PAGE_SLOT_WAIT):
        raise UpstreamError(f"{MAX_PAGE_FETCHES} upstream page fetches already under way")
    try:
        return _fetch_page(url, headers, etag)
    finally:
        _page_slots.release()


def _fetch_page(url: str, headers: dict[str, str], etag: str) -> PageAnswer:
    with _get(url, headers) as response:
        _check_status(response, {200, 304})
        content_type = response.headers.get("Content-Type", "")
        answer_etag = response.headers.get("ETag", "") or etag
        final = str(response.url)
        if response.status_code == 304:
            return PageAnswer(None, content_type, answer_etag, final)
        _check_length(response, MAX_PAGE_BYTES)
        body = bytearray()
        for chunk in response.iter_bytes(CHUNK_SIZE):
            body += chunk
            if len(body) > MAX_PAGE_BYTES:
                raise UpstreamError(f"page above the limit of {MAX_PAGE_BYTES} bytes")
        return PageAnswer(bytes(body), content_type, answer_etag, final)


@contextmanager
def fetch_file(url: str, *, max_size: int) -> Iterator[Fetched]:
    """GET a file into a temporary file of Relatch's own (never whole in memory), hashing it
    on the way; the temporary file is gone when the context ends."""
    directory = upload_temp_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=directory) as handle:
        sha256, size = _download(url, handle, max_size)
        handle.seek(0)
        yield Fetched(handle, sha256, size)


@dataclass(frozen=True)
class FileStream:
    """An upstream file's response, its body not read yet; ``length`` is its Content-Length."""

    response: httpx.Response
    length: int

    def chunks(self) -> Iterator[bytes]:
        return self.response.iter_raw(CHUNK_SIZE)


@contextmanager
def stream_file(url: str, *, max_size: int) -> Iterator[FileStream | None]:
    """GET a file and stop at its headers, for a caller that relays the body as it reads it.
    None when the upstream declares no Content-Length or encodes the body: then a relayed
    answer could not announce its length, and a client could not tell an aborted one (bytes
    that failed their check) from a whole one."""
    with _get(url, {"Accept-Encoding": "identity"}) as response:
        _check_status(response, {200})
        _check_length(response, max_size)
        declared = response.headers.get("Content-Length", "")
        encoded = response.headers.get("Content-Encoding", "identity").lower() != "identity"
        yield None if encoded or not declared.isdigit() else FileStream(response, int(declared))


def _download(url: str, handle: IO[bytes], max_size: int) -> tuple[str, int]:
    with _get(url, {}) as response:
        _check_status(response, {200})
        _check_length(response, max_size)
        digest, size = hashlib.sha256(), 0
        for chunk in response.iter_bytes(CHUNK_SIZE):
            size += len(chunk)
            if size > max_size:
                raise UpstreamError(f"file above the limit of {max_size} bytes")
            digest.update(chunk)
            handle.write(chunk)
    return digest.hexdigest(), size
