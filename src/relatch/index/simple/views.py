"""Installer-facing views: the simple index (PEP 503/691), files, and PyPI's JSON API.

All public (``login_not_required``) and read-only (``require_safe``): nothing here changes state.
"""

from collections.abc import Callable, Iterable, Iterator

from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.core.files.storage import default_storage
from django.http import (
    FileResponse,
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

from relatch.index.names import normalize_project_name
from relatch.index.simple import documents, negotiation, pypi, queries
from relatch.index.simple.caching import (
    FILE_CACHE_CONTROL,
    INDEX_CACHE_CONTROL,
    batched,
    is_fresh,
    make_etag,
    not_modified,
    quoted,
    with_cache_headers,
)
from relatch.index.simple.lean import installer_view

METADATA_SUFFIX = ".metadata"
# A cached page outlives no change (its key is the ETag); the timeout only frees memory.
PAGE_CACHE_SECONDS = 3600
# Part of every page's ETag and cache key: a release that changes what a page says (a new
# attribute, say) must not serve bodies, or 304s, made by the previous one from a shared cache.
PAGE_FORMAT = "3"
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


def _redirect(request: HttpRequest, view: str, *args: str) -> HttpResponsePermanentRedirect:
    """PEP 503: a non-normalised name redirects to the normalised URL (query kept)."""
    query = request.META.get("QUERY_STRING", "")
    return HttpResponsePermanentRedirect(reverse(view, args=args) + (f"?{query}" if query else ""))


@installer_view
@login_not_required
@require_safe
def index(request: HttpRequest) -> HttpResponseBase:
    """/simple/: every project, streamed, as HTML or JSON by ``Accept``."""
    content_type = negotiation.requested_content_type(request)
    if content_type is None:
        return _not_acceptable()
    version = queries.index_version()
    etag = make_etag("index", PAGE_FORMAT, version.epoch, version.generation, content_type)
    if is_fresh(request, etag):
        return not_modified(etag=etag, cache_control=INDEX_CACHE_CONTROL)
    response = StreamingHttpResponse(
        _index_blocks(content_type, etag), content_type=_header_value(content_type)
    )
    return with_cache_headers(response, etag=etag, cache_control=INDEX_CACHE_CONTROL)


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
        return _not_found()
    etag = make_etag(
        "project", PAGE_FORMAT, normalized, state.name, state.generation, content_type
    )
    if is_fresh(request, etag):
        return not_modified(etag=etag, cache_control=INDEX_CACHE_CONTROL)
    body = _project_body(state, normalized, content_type, etag)
    response = HttpResponse(body, content_type=_header_value(content_type))
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
        if negotiation.is_json(content_type):
            versions = queries.release_versions(state.id)
            text = documents.project_json(normalized, versions, files)
        else:
            text = documents.project_html(state.name, files)
        body = text.encode()
        cache.set(key, body, timeout=PAGE_CACHE_SECONDS)
    return body


def _is_plain_path(path: str) -> bool:
    """No traversal, no absolute path, no backslash or NUL: only names an upload could store.
    (Lookups are by exact File.path anyway; this refuses odd paths before the database.)"""
    if not path or path.startswith("/") or "\\" in path or "\x00" in path:
        return False
    return all(part not in {"", ".", ".."} for part in path.split("/"))


def _lookup(path: str) -> tuple[str, str, str] | None:
    """(storage name, ETag digest, content type) of a distribution file or its PEP 658
    metadata; None unless ``path`` belongs to a File row (arbitrary storage is never served)."""
    digest = queries.file_digest(path)
    if digest is not None:
        return path, digest, "application/octet-stream"
    if path.endswith(METADATA_SUFFIX):
        digest = queries.metadata_digest(path.removesuffix(METADATA_SUFFIX))
        if digest is not None:
            return path, digest, "text/plain; charset=utf-8"
    return None


def find_download(path: str) -> tuple[str, str, str] | None:
    """(storage name, ETag digest, content type) of what /files/<path> serves; None when
    nothing is. One or two indexed lookups."""
    return _lookup(path) if _is_plain_path(path) else None


@installer_view
@login_not_required
@require_safe
def download(request: HttpRequest, path: str) -> HttpResponseBase:
    """/files/<path>: a stored distribution file, or ``<path>.metadata`` (PEP 658)."""
    found = find_download(path)
    if found is None:
        return _not_found()
    storage_name, digest, content_type = found
    etag = quoted(digest)
    if is_fresh(request, etag):
        return not_modified(etag=etag, cache_control=FILE_CACHE_CONTROL, vary_accept=False)
    try:
        handle = default_storage.open(storage_name, "rb")
    except OSError:
        return _not_found()  # the row exists but storage lost the bytes: not a 500
    response = FileResponse(handle, content_type=content_type)
    return with_cache_headers(
        response, etag=etag, cache_control=FILE_CACHE_CONTROL, vary_accept=False
    )


def _json_not_found() -> JsonResponse:
    return JsonResponse({"message": "Not Found"}, status=404)


@installer_view
@login_not_required
@require_safe
def pypi_project(request: HttpRequest, name: str) -> HttpResponseBase:
    """/pypi/<project>/json: PyPI's JSON for the project and its latest release."""
    normalized = normalize_project_name(name)
    if name != normalized:
        return _redirect(request, "simple:pypi-project", normalized)
    found = queries.find_project(normalized)
    if found is None:
        return _json_not_found()
    etag = make_etag("pypi", normalized, found.generation)
    if is_fresh(request, etag):
        return not_modified(etag=etag, cache_control=INDEX_CACHE_CONTROL, vary_accept=False)
    releases = queries.releases_with_files(found)
    latest = queries.latest_release(releases)
    if latest is None:
        return _json_not_found()
    response = JsonResponse(pypi.project_document(found, releases, latest))
    return with_cache_headers(
        response, etag=etag, cache_control=INDEX_CACHE_CONTROL, vary_accept=False
    )


@installer_view
@login_not_required
@require_safe
def pypi_release(request: HttpRequest, name: str, version: str) -> HttpResponseBase:
    """/pypi/<project>/<version>/json: PyPI's JSON for one release."""
    normalized = normalize_project_name(name)
    if name != normalized:
        return _redirect(request, "simple:pypi-release", normalized, version)
    found = queries.find_project(normalized)
    if found is None:
        return _json_not_found()
    etag = make_etag("pypi", normalized, version, found.generation)
    if is_fresh(request, etag):
        return not_modified(etag=etag, cache_control=INDEX_CACHE_CONTROL, vary_accept=False)
    release = queries.find_release(queries.releases_with_files(found), version)
    if release is None:
        return _json_not_found()
    response = JsonResponse(pypi.release_document(found, release))
    return with_cache_headers(
        response, etag=etag, cache_control=INDEX_CACHE_CONTROL, vary_accept=False
    )
