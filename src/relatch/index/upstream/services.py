"""Keeping upstream pages and storing upstream files: the only writers of their rows.

Callers (``relatch.index.upstream.views``) have already found that the name has no local
project: nothing here is ever asked about a local name (the dependency-confusion rule).
"""

import hashlib
import json
import logging
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.files import File as DjangoFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone

from relatch.index.names import is_valid_project_name, normalize_project_name
from relatch.index.upload.temp_files import upload_temp_dir
from relatch.index.upstream import client, pages
from relatch.index.upstream.client import UpstreamError, UpstreamNotFoundError
from relatch.index.upstream.documents import upstream_path
from relatch.index.upstream.models import UpstreamFile, UpstreamPage

logger = logging.getLogger(__name__)

METADATA_SUFFIX = ".metadata"
# A wheel's METADATA file (PEP 658); far above any real one.
MAX_METADATA_SIZE = 10 * 1024 * 1024


class UpstreamUnavailableError(Exception):
    """The upstream failed and nothing is kept to serve instead (502)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UpstreamHashMismatchError(UpstreamUnavailableError):
    """The upstream's bytes are not the ones its page promised: nothing was stored."""


@dataclass(frozen=True)
class KeptPage:
    data: dict[str, Any]
    digest: str
    stale: bool  # the upstream failed: this is older than UPSTREAM_PAGE_SECONDS


def page_url(normalized_name: str) -> str:
    return f"{settings.UPSTREAM_URL}{normalized_name}/"


def upstream_for_logs() -> str:
    return client.without_credentials(settings.UPSTREAM_URL)


def _is_fresh(fetched_at: datetime) -> bool:
    age = timezone.now() - fetched_at
    return timedelta(0) <= age < timedelta(seconds=settings.UPSTREAM_PAGE_SECONDS)


def current_page(*, normalized_name: str) -> KeptPage:
    """The upstream's page of ``normalized_name``: the kept one while fresh, else fetched
    again (with If-None-Match) and kept. An upstream failure serves the kept page, marked
    stale; with none kept it raises UpstreamUnavailableError. A 404 from the upstream
    forgets the kept page, is remembered for UPSTREAM_PAGE_SECONDS and raises
    UpstreamNotFoundError; so does a name that is not a valid project name (never asked)."""
    if not is_valid_project_name(normalized_name) or is_known_missing(normalized_name):
        raise UpstreamNotFoundError("not a valid name, or the upstream said 404 lately")
    kept = UpstreamPage.objects.filter(normalized_name=normalized_name).first()
    if kept is not None and _is_fresh(kept.fetched_at):
        return KeptPage(kept.data, kept.digest, stale=False)
    try:
        return _refresh(normalized_name, kept)
    except UpstreamNotFoundError:
        UpstreamPage.objects.filter(normalized_name=normalized_name).delete()
        remember_missing(normalized_name)
        raise
    except (UpstreamError, pages.PageFormatError) as error:
        return _stale_or_fail(normalized_name, kept, str(error))


def _missing_key(normalized_name: str) -> str:
    return f"relatch-upstream-missing:{normalized_name}"


def is_known_missing(normalized_name: str) -> bool:
    """The upstream answered 404 for the name within UPSTREAM_PAGE_SECONDS."""
    return cache.get(_missing_key(normalized_name)) is not None


def remember_missing(normalized_name: str) -> None:
    """Remember a 404 (negative caching) in the Django cache, not a row: a made-up name asked
    for again within UPSTREAM_PAGE_SECONDS never reaches the upstream again (anyone could
    otherwise make Relatch hammer it), and an attacker's endless made-up names cost expiring,
    bounded cache entries (Redis TTLs; LocMem culls), never table rows to sweep."""
    cache.set(_missing_key(normalized_name), 1, timeout=settings.UPSTREAM_PAGE_SECONDS)


def _stale_or_fail(normalized_name: str, kept: UpstreamPage | None, reason: str) -> KeptPage:
    if kept is None:
        logger.warning("Upstream %s failed for %s (%s); nothing kept to serve",
                       upstream_for_logs(), normalized_name, reason)
        raise UpstreamUnavailableError(
            f"The upstream index ({upstream_for_logs()}) did not answer for "
            f"'{normalized_name}' ({reason}), and Relatch has no copy of its page. "
            "Try again later."
        )
    logger.warning("Upstream %s failed for %s (%s); serving the page kept since %s",
                   upstream_for_logs(), normalized_name, reason, kept.fetched_at.isoformat())
    return KeptPage(kept.data, kept.digest, stale=True)


def _refresh(normalized_name: str, kept: UpstreamPage | None) -> KeptPage:
    answer = client.fetch_page(page_url(normalized_name), etag=kept.etag if kept else "")
    if answer.body is None:
        if kept is None:  # a 304 to a request without If-None-Match: a broken upstream
            raise UpstreamError("HTTP 304 without a kept page")
        UpstreamPage.objects.filter(pk=kept.pk).update(
            fetched_at=timezone.now(), etag=answer.etag[:500]
        )
        return KeptPage(kept.data, kept.digest, stale=False)
    data = pages.parse_page(answer.body, answer.content_type, answer.url, normalized_name)
    digest = _digest(data)
    keep_page(normalized_name=normalized_name, data=data, digest=digest, etag=answer.etag)
    return KeptPage(data, digest, stale=False)


def _digest(data: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def keep_page(*, normalized_name: str, data: dict[str, Any], digest: str, etag: str) -> None:
    """Keep (or replace) the page. Two requests fetching the same new page at once both
    write it; the second's insert loses the unique name and its copy is dropped."""
    fields = {"data": data, "digest": digest, "etag": etag[:500], "fetched_at": timezone.now()}
    try:
        with transaction.atomic():
            UpstreamPage.objects.update_or_create(normalized_name=normalized_name,
                                                  defaults=fields)
    except IntegrityError:
        pass  # the other request kept the same page


@dataclass(frozen=True)
class Wanted:
    """An upstream file asked for by its Relatch path."""

    path: str
    project: str
    sha256: str
    filename: str

    @property
    def is_metadata(self) -> bool:
        return self.filename.endswith(METADATA_SUFFIX)

    @property
    def dist_filename(self) -> str:
        return self.filename.removesuffix(METADATA_SUFFIX)


def _source(wanted: Wanted) -> tuple[str, str, int]:
    """(upstream URL, expected SHA-256, size limit) of a file the kept page lists."""
    kept = UpstreamPage.objects.filter(normalized_name=wanted.project).first()
    entry = pages.find_file(kept.data, wanted.dist_filename, wanted.sha256) if kept else None
    if entry is None or (wanted.is_metadata and not entry["core_metadata"]):
        raise UpstreamNotFoundError("not on the kept page")
    if wanted.is_metadata:
        # PEP 658: the metadata is at the file's URL + ".metadata".
        return entry["url"] + METADATA_SUFFIX, entry["core_metadata"], MAX_METADATA_SIZE
    return entry["url"], entry["sha256"], settings.UPSTREAM_MAX_FILE_SIZE


def store_file(*, wanted: Wanted) -> UpstreamFile:
    """Fetch the file from the upstream, check its SHA-256 against the kept page's, store it
    and record it. Raises UpstreamNotFoundError (not on the page, or the upstream's 404),
    UpstreamHashMismatchError (nothing stored), UpstreamUnavailableError, OSError (storage)."""
    url, expected, limit = _source(wanted)
    try:
        with client.fetch_file(url, max_size=limit) as fetched:
            if not secrets.compare_digest(fetched.sha256, expected):
                raise _mismatch(wanted, url, fetched.sha256, expected)
            return _save(wanted, fetched)
    except UpstreamNotFoundError:
        raise
    except UpstreamError as error:
        raise _unavailable(wanted, url, error) from None


def forget_lost_copy(*, url_path: str, storage_name: str) -> bool:
    """Drop the row of a stored upstream copy whose bytes are gone from storage, so the next
    request fetches the file again; whether this call dropped it."""
    dropped, _ = UpstreamFile.objects.filter(url_path=url_path,
                                             storage_name=storage_name).delete()
    if dropped:
        logger.error("Stored upstream file %s was missing from storage; it is fetched again",
                     storage_name)
    return bool(dropped)


def _unavailable(wanted: Wanted, url: str, error: UpstreamError) -> UpstreamUnavailableError:
    logger.warning("Upstream file %s could not be fetched: %s",
                   client.without_credentials(url), error.reason)
    return UpstreamUnavailableError(
        f"The upstream index did not give {wanted.filename} ({error.reason}). Try again later."
    )


@dataclass(frozen=True)
class Relay:
    """An upstream file on its way to the client and to storage at once: ``chunks`` yields
    the upstream's bytes as they arrive, ``size`` of them in all."""

    size: int
    chunks: Iterator[bytes]


def relay_file(*, wanted: Wanted) -> Relay | None:
    """Start fetching the file to relay it while it is written to a temporary file and
    hashed (a large first download then starts at once, not after the whole fetch: pip
    gives up after 15 s without a byte). None when the upstream gives no length (use
    store_file). Raises as store_file does for what is known before the body."""
    url, expected, limit = _source(wanted)
    stack = ExitStack()
    try:
        stream = stack.enter_context(client.stream_file(url, max_size=limit))
    except UpstreamNotFoundError:
        raise
    except UpstreamError as error:
        raise _unavailable(wanted, url, error) from None
    if stream is None:
        stack.close()
        return None
    return Relay(stream.length, _relayed(stack, stream, wanted, url, expected))


def _relayed(stack: ExitStack, stream: client.FileStream, wanted: Wanted, url: str,
             expected: str) -> Iterator[bytes]:
    """The body, each chunk sent once it is written and hashed, the LAST one only after the
    whole file matched its SHA-256 and length and was stored. Bytes that do not match raise
    instead: the server then aborts the connection short of Content-Length, so the client
    holds a broken download, never a whole-looking wrong file, and nothing is stored."""
    with stack, tempfile.TemporaryFile(dir=_temp_dir()) as handle:
        digest, size, held = hashlib.sha256(), 0, b""
        for chunk in stream.chunks():
            size += len(chunk)
            if size > stream.length:
                break
            digest.update(chunk)
            handle.write(chunk)
            if held:
                yield held
            held = chunk
        got = digest.hexdigest()
        if size != stream.length or not secrets.compare_digest(got, expected):
            raise _mismatch(wanted, url, got, expected)
        handle.seek(0)
        _store_relayed(wanted, client.Fetched(handle, got, size))
        yield held


def _temp_dir() -> Path:
    directory = upload_temp_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return directory


def _store_relayed(wanted: Wanted, fetched: client.Fetched) -> None:
    # The bytes are checked: the client gets its last chunk even if storing fails (the next
    # request fetches again).
    try:
        _save(wanted, fetched)
    except OSError:
        logger.exception("Storing upstream file %s failed", wanted.filename)


def _mismatch(wanted: Wanted, url: str, got: str, expected: str) -> UpstreamHashMismatchError:
    # The upstream (or something between) changed the bytes: never stored, never served.
    logger.error("Upstream file %s has SHA-256 %s, but its page says %s: refused, not stored",
                 client.without_credentials(url), got, expected)
    return UpstreamHashMismatchError(
        f"The upstream index sent {wanted.filename} with SHA-256 {got}, but its page lists "
        f"{expected}. The file was refused and not stored."
    )


def _storage_name(wanted: Wanted) -> str:
    digest = wanted.sha256
    # The random part: concurrent first downloads never write to the same name.
    return (f"upstream/{digest[:2]}/{digest[2:4]}/{digest[4:]}/{secrets.token_hex(8)}/"
            f"{wanted.filename}")


def _save(wanted: Wanted, fetched: client.Fetched) -> UpstreamFile:
    name = _storage_name(wanted)
    saved = default_storage.save(name, DjangoFile(fetched.handle, name=wanted.filename))
    try:
        if saved != name:
            raise OSError(f"storage saved {name!r} as {saved!r}")
        with transaction.atomic():
            return UpstreamFile.objects.create(
                url_path=wanted.path, storage_name=name, sha256=fetched.sha256,
                size=fetched.size, project_name=wanted.project,
            )
    except IntegrityError:
        default_storage.delete(saved)  # another request stored it first: theirs is kept
        return UpstreamFile.objects.get(url_path=wanted.path)
    except BaseException:
        default_storage.delete(saved)
        raise


def wanted_file(path: str) -> Wanted | None:
    """The upstream file ``path`` (what follows /files/) names, if it is one."""
    parts = path.split("/")
    if len(parts) != 4 or parts[0] != "upstream":
        return None
    _prefix, project, sha256, filename = parts
    if not is_valid_project_name(project) or normalize_project_name(project) != project:
        return None
    if not pages.is_sha256(sha256):
        return None
    if not pages.plain_filename(filename.removesuffix(METADATA_SUFFIX)):
        return None
    if upstream_path(project, sha256, filename) != path:
        return None
    return Wanted(path, project, sha256, filename)
