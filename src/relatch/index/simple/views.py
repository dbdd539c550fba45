"""Installer-facing views: the simple index (PEP 503/691), files, and PyPI's JSON API.

All read-only (``require_safe``): nothing here changes state. ``login_not_required``: who may
read is decided by ``access.readers_only`` (RELATCH_READ_ACCESS, read tokens, private
projects), which answers 401 rather than redirecting to a sign-in page.
"""

from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.core.files.storage import default_storage
from django.db.models import Q
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseNotFound,
    HttpResponsePermanentRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.urls import reverse
from django.views.decorators.http import require_safe

from relatch.index.models import Project
from relatch.index.names import normalize_project_name
from relatch.index.simple import accel, access, documents, negotiation, pypi, queries, ranges
from relatch.index.simple.access import json_refusals, readers_only
from relatch.index.simple.caching import (
    FILE_CACHE_CONTROL,
    INDEX_CACHE_CONTROL,
    batched,
    is_fresh,
    is_not_modified,
    make_etag,
    not_modified,
    quoted,
    settled,
    with_cache_headers,
    with_last_modified,
)
from relatch.index.simple.cors import allow_any_origin, with_serial
from relatch.index.simple.lean import installer_view
from relatch.index.store import downloads as store_downloads
from relatch.index.store.errors import StoreUnavailableError
from relatch.index.upstream import views as upstream_views
from relatch.index.upstream.documents import UPSTREAM_PREFIX

METADATA_SUFFIX = ".metadata"
# A cached page outlives no change (its key is the ETag); the timeout only frees memory.
PAGE_CACHE_SECONDS = 3600
# Part of every page's ETag and cache key: a release that changes what a page says (a new
# attribute, say) must not serve bodies, or 304s, made by the previous one from a shared cache.
PAGE_FORMAT = "4"
# /simple/ is kept whole in the cache up to this many projects (~70 bytes each); above, it is
# streamed from the database on every miss instead of held in every process's memory.
INDEX_CACHE_MAX_PROJECTS = 20_000


def _header_value(content_type: str) -> str:
    return content_type if negotiation.is_json(content_type) else f"{content_type}; charset=utf-8"


def _not_acceptable() -> HttpResponse:
    response = HttpResponse(
        "Not Acceptable. Available: " + ", ".join(negotiation.SUPPORTED) + "\n",
        status=406, content_type="text/plain; charset=utf-8",
    )
    response["Vary"] = "Accept"
    return response


def _not_found() -> HttpResponse:
    return HttpResponseNotFound("Not Found\n", content_type="text/plain; charset=utf-8")


def _hidden(status: str) -> bool:
    """PEP 792: a quarantined project's pages and files are not served to installers at all;
    it answers as if it did not exist (the same 404, so nothing tells it from a typo)."""
    return status == Project.Status.QUARANTINED


def _redirect(request: HttpRequest, view: str, *args: str) -> HttpResponsePermanentRedirect:
    """PEP 503: a non-normalised name redirects to the normalised URL (query kept)."""
    query = request.META.get("QUERY_STRING", "")
    return HttpResponsePermanentRedirect(reverse(view, args=args) + (f"?{query}" if query else ""))


@installer_view
@login_not_required
@require_safe
@allow_any_origin
@readers_only
def index(request: HttpRequest) -> HttpResponseBase:
    """/simple/: every project, streamed, as HTML or JSON by ``Accept``."""
    content_type = negotiation.requested_content_type(request)
    if content_type is None:
        return _not_acceptable()
    if (readable := access.listed_projects(request)) is not None:
        return _reader_index(content_type, readable)
    version = queries.index_version()
    etag = make_etag("index", PAGE_FORMAT, version.epoch, version.generation, content_type)
    if is_fresh(request, etag):
        return with_serial(
            not_modified(etag=etag, cache_control=INDEX_CACHE_CONTROL), version.serial
        )
    response = StreamingHttpResponse(
        _index_blocks(content_type, etag), content_type=_header_value(content_type)
    )
    with_serial(response, version.serial)
    return with_cache_headers(response, etag=etag, cache_control=INDEX_CACHE_CONTROL)


def _reader_index(content_type: str, readable: Q) -> HttpResponseBase:
    """/simple/ as one reader may see it: built per request, never cached or given an ETag
    (another reader's list, or the anonymous one, must not answer for it)."""
    render = documents.index_json if negotiation.is_json(content_type) else documents.index_html
    blocks = batched(render(queries.iter_project_names(readable=readable)))
    response = StreamingHttpResponse(blocks, content_type=_header_value(content_type))
    response["Cache-Control"] = "private, no-cache"
    return with_serial(response, queries.index_version().serial)


class _Counted:
    """The project names, counting how many went by (there is no COUNT query to ask)."""

    def __init__(self, names: Iterator[tuple[str, str]]) -> None:
        self.names = names
        self.count = 0

    def __iter__(self) -> Iterator[tuple[str, str]]:
        for name in self.names:
            self.count += 1
            yield name


def _index_blocks(content_type: str, etag: str) -> Iterator[bytes]:
    """/simple/'s body in blocks, from the cache under its ETag (which changes with every new
    or deleted project) when it is there."""
    key = f"relatch-simple-index:{etag}"
    if (cached := cache.get(key)) is not None:
        yield from cached
        return
    render = documents.index_json if negotiation.is_json(content_type) else documents.index_html
    yield from _stream_keeping_small(render, key)


def _stream_keeping_small(
    render: Callable[[Iterable[tuple[str, str]]], Iterator[str]], key: str
) -> Iterator[bytes]:
    """Stream the list from the database, keeping it under ``key`` up to
    INDEX_CACHE_MAX_PROJECTS names; past that the kept blocks are dropped at once, so 200 000
    projects never sit in memory (and are streamed again on the next miss)."""
    names = _Counted(queries.iter_project_names())
    kept: list[bytes] | None = []
    for block in batched(render(names)):
        if kept is not None and names.count <= INDEX_CACHE_MAX_PROJECTS:
            kept.append(block)
        else:
            kept = None
        yield block
    if kept is not None and names.count <= INDEX_CACHE_MAX_PROJECTS:
        cache.set(key, kept, timeout=PAGE_CACHE_SECONDS)


@installer_view
@login_not_required
@require_safe
@allow_any_origin
@readers_only
def project(request: HttpRequest, name: str) -> HttpResponseBase:
    """/simple/<project>/: the project's files with hashes, Requires-Python, yanks, metadata."""
    normalized = normalize_project_name(name)
    if name != normalized:
        return _redirect(request, "simple:project", normalized)
    content_type = negotiation.requested_content_type(request)
    if content_type is None:
        return _not_acceptable()
    state = queries.project_state(normalized)
    if state is None:
        # No local project of that name: the upstream's page, if there is an upstream. A
        # local name (even an empty, reserved one) never reaches here: no mixing, ever.
        return upstream_views.project_page(request, normalized, content_type)
    if state is None or _hidden(state.status):
        return _not_found()
    if refused := access.refuse_project(request, project_id=state.id, private=state.private):
        return refused
    etag = make_etag(
        "project", PAGE_FORMAT, normalized, state.name, state.generation, content_type
    )
    changed = settled(state.last_changed_at)
    if is_not_modified(request, etag=etag, last_modified=changed):
        return with_serial(
            not_modified(etag=etag, cache_control=INDEX_CACHE_CONTROL), state.last_serial
        )
    body = _project_body(state, normalized, content_type, etag)
    response = with_serial(
        HttpResponse(body, content_type=_header_value(content_type)), state.last_serial
    )
    with_last_modified(response, changed)
    return with_cache_headers(response, etag=etag, cache_control=INDEX_CACHE_CONTROL)


def _project_body(
    state: queries.ProjectState, normalized: str, content_type: str, etag: str
) -> bytes:
    """The page, built once per version of the project: the ETag changes with every upload,
    yank, unyank and delete (Project.generation), so a body cached under it is never
    stale. Kept encoded, so a hit costs one cache read and no encoding."""
    key = f"relatch-simple-project:{etag}"
    body = cache.get(key)
    if not isinstance(body, bytes):
        files = queries.file_rows(state.id)
        status = _project_status(state)
        if negotiation.is_json(content_type):
            versions = queries.release_versions(state.id)
            text = documents.project_json(normalized, versions, files, status)
        else:
            text = documents.project_html(state.name, files, status)
        body = text.encode()
        cache.set(key, body, timeout=PAGE_CACHE_SECONDS)
    return body


def _project_status(state: queries.ProjectState) -> documents.ProjectStatus:
    """PEP 792's status and reason; the reason is read only for a project that has a status
    (every status change bumps the generation, so the page's ETag covers both)."""
    if state.status == Project.Status.ACTIVE:
        return documents.ACTIVE
    return documents.ProjectStatus(state.status, queries.status_reason(state.id))


def _is_plain_path(path: str) -> bool:
    """No traversal, no absolute path, no backslash or NUL: only names an upload could store.
    (Lookups are by exact File.path anyway; this refuses odd paths before the database.)"""
    if not path or path.startswith("/") or "\\" in path or "\x00" in path:
        return False
    return all(part not in {"", ".", ".."} for part in path.split("/"))


class Download(NamedTuple):
    """What /files/<path> serves: the storage name, the ETag digest and content type, and
    the file row (its upload time, its project's privacy and status)."""

    storage_name: str
    digest: str
    content_type: str
    file: queries.StoredFile


def _lookup(path: str) -> Download | None:
    """A distribution file or its PEP 658 metadata; None unless ``path`` belongs to a File
    row (arbitrary storage is never served)."""
    if (file := queries.stored_file(path)) is not None:
        return Download(path, file.sha256_digest, "application/octet-stream", file)
    if path.endswith(METADATA_SUFFIX):
        file = queries.stored_file(path.removesuffix(METADATA_SUFFIX))
        if file is not None and file.metadata_sha256_digest:
            return Download(path, file.metadata_sha256_digest, "text/plain; charset=utf-8", file)
    return None


def find_download(path: str) -> Download | None:
    """What /files/<path> serves; None when nothing is. One or two indexed lookups."""
    return _lookup(path) if _is_plain_path(path) else None


@installer_view
@login_not_required
@require_safe
@allow_any_origin
@readers_only
def download(request: HttpRequest, path: str) -> HttpResponseBase:
    """/files/<path>: a stored distribution file, or ``<path>.metadata`` (PEP 658)."""
    found = find_download(path)
    if found is None and path.startswith(UPSTREAM_PREFIX):
        return upstream_views.download(request, path)  # fetched once, then stored
    if found is None or _hidden(found.file.project_status):
        return _not_found()
    owner, private = found.file.project_id, found.file.project_private
    if refused := access.refuse_project(request, project_id=owner, private=private):
        return refused
    storage_name, digest, content_type, file = found
    etag = quoted(digest)
    if is_not_modified(request, etag=etag, last_modified=file.uploaded_at):
        return not_modified(etag=etag, cache_control=FILE_CACHE_CONTROL, vary_accept=False)
    # Every check above is done: nginx may send the bytes (RELATCH_ACCEL_REDIRECT).
    if sent := accel.accel_response(request, storage_name=storage_name,
                                    content_type=content_type, etag=etag,
                                    last_modified=file.uploaded_at):
        return sent
    if redirected := store_downloads.redirect_response(request, storage_name,
                                                       content_type=content_type):
        return redirected
    try:
        handle = default_storage.open(storage_name, "rb")
    except StoreUnavailableError as error:
        return store_downloads.unavailable_response(error)
    except OSError:
        return _not_found()  # the row exists but storage lost the bytes: not a 500
    # Whole, or the one range a resumed download asks for (relatch.index.simple.ranges).
    return ranges.file_response(
        request, handle, content_type=content_type, etag=etag, last_modified=file.uploaded_at
    )


def _json_not_found() -> JsonResponse:
    return JsonResponse({"message": "Not Found"}, status=404)


def _pypi_answer(request: HttpRequest, etag: str, project: Project,
                 document: Callable[[], dict[str, object] | None]) -> HttpResponseBase:
    """A /pypi/ JSON answer (or its 304) with the project's serial, as PyPI sends it."""
    changed = settled(project.last_changed_at)
    if is_not_modified(request, etag=etag, last_modified=changed):
        response = not_modified(etag=etag, cache_control=INDEX_CACHE_CONTROL, vary_accept=False)
    elif (body := document()) is None:
        return _json_not_found()
    else:
        response = with_last_modified(JsonResponse(body), changed)
    with_serial(response, project.last_serial)
    return with_cache_headers(
        response, etag=etag, cache_control=INDEX_CACHE_CONTROL, vary_accept=False
    )


def _visible_project(normalized: str) -> Project | None:
    found = queries.find_project(normalized)
    return None if found is None or _hidden(found.status) else found


@installer_view
@login_not_required
@require_safe
@allow_any_origin
@json_refusals
@readers_only
def pypi_project(request: HttpRequest, name: str) -> HttpResponseBase:
    """/pypi/<project>/json: PyPI's JSON for the project and the release PyPI would call
    its latest (queries.latest_release)."""
    normalized = normalize_project_name(name)
    if name != normalized:
        return _redirect(request, "simple:pypi-project", normalized)
    found = _visible_project(normalized)
    if found is None:
        return _json_not_found()
    if refused := access.refuse_project(request, project_id=found.pk, private=found.private):
        return refused

    def document() -> dict[str, object] | None:
        releases = queries.releases_with_files(found)
        latest = queries.latest_release(releases)
        return None if latest is None else pypi.project_document(found, releases, latest)

    etag = make_etag("pypi", PAGE_FORMAT, pypi.DOCUMENT_FORMAT, normalized,
                     found.generation)
    return _pypi_answer(request, etag, found, document)


@installer_view
@login_not_required
@require_safe
@allow_any_origin
@json_refusals
@readers_only
def pypi_release(request: HttpRequest, name: str, version: str) -> HttpResponseBase:
    """/pypi/<project>/<version>/json: PyPI's JSON for one release."""
    normalized = normalize_project_name(name)
    if name != normalized:
        return _redirect(request, "simple:pypi-release", normalized, version)
    found = _visible_project(normalized)
    if found is None:
        return _json_not_found()
    if refused := access.refuse_project(request, project_id=found.pk, private=found.private):
        return refused

    def document() -> dict[str, object] | None:
        release = queries.find_release(queries.releases_with_files(found), version)
        return None if release is None else pypi.release_document(found, release)

    etag = make_etag("pypi", PAGE_FORMAT, pypi.DOCUMENT_FORMAT, normalized, version,
                     found.generation)
    return _pypi_answer(request, etag, found, document)
