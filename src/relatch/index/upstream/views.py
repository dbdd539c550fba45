"""What the installer views (``relatch.index.simple.views``) answer where a name or a file
path is not local: the upstream's page, or its file fetched once.

Called only after the view found no local project (and after any read-access check at the
top of the view), on the lean installer path: nothing here reads a session, a user or a
cookie. Responses here vary only on ``Accept`` and never enter the whole-response cache
(its marker is None for a name that is not local; see ``response_cache.page_marker``).
"""

import logging

from django.conf import settings
from django.core.cache import cache
from django.core.files.storage import default_storage
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseNotFound,
    StreamingHttpResponse,
)

from relatch.index.simple import accel, negotiation, queries, ranges
from relatch.index.simple.caching import (
    FILE_CACHE_CONTROL,
    INDEX_CACHE_CONTROL,
    is_fresh,
    is_not_modified,
    make_etag,
    not_modified,
    quoted,
    with_cache_headers,
)
from relatch.index.store import downloads as store_downloads
from relatch.index.store.errors import StoreUnavailableError
from relatch.index.upstream import documents, services
from relatch.index.upstream.client import UpstreamNotFoundError
from relatch.index.upstream.queries import StoredFile, content_type_of, stored_file

logger = logging.getLogger(__name__)

# Says where a page came from: "fresh" (the upstream confirmed it within
# UPSTREAM_PAGE_SECONDS) or "stale" (the upstream failed; the page kept from before).
SOURCE_HEADER = "X-Relatch-Upstream"
PAGE_FORMAT = "1"
PAGE_CACHE_SECONDS = 3600


def _text(message: str, status: int) -> HttpResponse:
    return HttpResponse(message + "\n", status=status, content_type="text/plain; charset=utf-8")


def _not_found() -> HttpResponse:
    return HttpResponseNotFound("Not Found\n", content_type="text/plain; charset=utf-8")


def project_page(request: HttpRequest, normalized: str, content_type: str) -> HttpResponseBase:
    """/simple/<name>/ for a name with no local project: the upstream's page, its links
    pointing to Relatch; 404 when there is no upstream or it has no such project."""
    if not settings.UPSTREAM_URL:
        return _not_found()
    try:
        kept = services.current_page(normalized_name=normalized)
    except UpstreamNotFoundError:
        return _not_found()
    except services.UpstreamUnavailableError as error:
        return _text(error.message, 502)
    etag = make_etag("upstream", PAGE_FORMAT, normalized, kept.digest, content_type)
    if is_fresh(request, etag):
        response = not_modified(etag=etag, cache_control=INDEX_CACHE_CONTROL)
    else:
        response = HttpResponse(_body(normalized, kept, content_type, etag),
                                content_type=_header_value(content_type))
        with_cache_headers(response, etag=etag, cache_control=INDEX_CACHE_CONTROL)
    response[SOURCE_HEADER] = "stale" if kept.stale else "fresh"
    return response


def _header_value(content_type: str) -> str:
    return content_type if negotiation.is_json(content_type) else f"{content_type}; charset=utf-8"


def _body(normalized: str, kept: services.KeptPage, content_type: str, etag: str) -> bytes:
    """The page, built once per version of the kept data (its digest is in the ETag)."""
    key = f"relatch-upstream-page:{etag}"
    body = cache.get(key)
    if not isinstance(body, bytes):
        render = (documents.project_json if negotiation.is_json(content_type)
                  else documents.project_html)
        body = render(normalized, kept.data).encode()
        cache.set(key, body, timeout=PAGE_CACHE_SECONDS)
    return body


def download(request: HttpRequest, path: str) -> HttpResponseBase:
    """/files/upstream/<project>/<sha256>/<filename>[.metadata]: the stored copy (no upstream
    contact), else fetched from the upstream on this first request, checked and stored.
    A stored copy is sent as local files are: ranges, ETag and Last-Modified (when stored)."""
    found = stored_file(path)
    if found is None:
        fetched = _first_download(request, path)
        if isinstance(fetched, HttpResponseBase):
            return fetched
        found = fetched
    etag = quoted(found.sha256)
    if is_not_modified(request, etag=etag, last_modified=found.stored_at):
        return not_modified(etag=etag, cache_control=FILE_CACHE_CONTROL, vary_accept=False)
    # A stored copy may be sent by nginx (RELATCH_ACCEL_REDIRECT); a first download never is.
    if sent := accel.accel_response(request, storage_name=found.storage_name,
                                    content_type=found.content_type, etag=etag,
                                    last_modified=found.stored_at):
        return sent
    try:
        handle = default_storage.open(found.storage_name, "rb")
    except StoreUnavailableError as error:
        return store_downloads.unavailable_response(error)
    except OSError:
        # Lost (a restore without it, a store replaced): forgotten, and fetched again now,
        # checked against the digest in its URL, rather than a 404 for ever.
        if services.forget_lost_copy(url_path=path, storage_name=found.storage_name):
            return download(request, path)
        return _not_found()
    return ranges.file_response(request, handle, content_type=found.content_type, etag=etag,
                                last_modified=found.stored_at)


def _first_download(request: HttpRequest, path: str) -> StoredFile | HttpResponseBase:
    """Fetch, check and store an upstream file; then the stored file. A response instead
    when there is nothing to serve (404, 502, 503), or when the file is relayed as it is
    fetched (a plain GET: not a HEAD, nor a Range, which are answered from the stored copy)."""
    wanted = services.wanted_file(path)
    if wanted is None or not settings.UPSTREAM_URL:
        return _not_found()
    if queries.project_state(wanted.project) is not None:
        # The name is local now (uploaded or reserved): the upstream is never consulted for it.
        return _not_found()
    try:
        if request.method == "GET" and "Range" not in request.headers:
            relay = services.relay_file(wanted=wanted)
            if relay is not None:
                return _relay_response(relay, wanted)
        services.store_file(wanted=wanted)
    except UpstreamNotFoundError:
        return _not_found()
    except services.UpstreamUnavailableError as error:
        return _text(error.message, 502)
    except OSError:
        logger.exception("Storing upstream file %s failed", wanted.filename)
        return _text("The file could not be stored right now. Try again later.", 503)
    found = stored_file(path)
    return found if found is not None else _not_found()


def _relay_response(relay: services.Relay, wanted: services.Wanted) -> HttpResponseBase:
    """The file as the upstream sends it, with its length announced: a relay whose bytes
    fail their check ends short of it (services._relayed), which every client notices."""
    response = StreamingHttpResponse(relay.chunks, content_type=content_type_of(wanted.path))
    response["Content-Length"] = str(relay.size)
    response["Accept-Ranges"] = "bytes"
    return with_cache_headers(response, etag=quoted(wanted.sha256),
                              cache_control=FILE_CACHE_CONTROL, vary_accept=False)
