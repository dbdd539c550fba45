"""Kept responses (relatch.index.simple.response_cache): an unchanged index page is answered
without entering Django, with the very bytes Django sent; any change, and any request Django
must judge for itself, goes to Django.

The application under test is ``relatch.wsgi.application``'s own stack, with a counter in front
of Django's part, so a test can tell a kept answer from Django's. The handler closes its
database connection after each request, as in production: rows are committed
(transaction=True).
"""

from collections.abc import Callable
from typing import Any
from wsgiref.util import FileWrapper

import pytest
from django.db import connection

from relatch.accounts.models import User
from relatch.index.change_stamp import index_change_stamp
from relatch.index.manage.releases import delete_release, unyank_release, yank_release
from relatch.index.models import File, Project
from relatch.index.simple import response_cache
from relatch.index.simple.response_cache import (
    TRUST_SECONDS,
    KeptResponse,
    ResponseCache,
    ResponseStore,
    is_keepable,
)
from relatch.wsgi import application
from tests.index.dists import build_wheel
from tests.index.simple_rows import publish
from tests.index.wsgi_calls import Counted, FakeClock, call_app, environ

pytestmark = pytest.mark.django_db(transaction=True)
JSON = "application/vnd.pypi.simple.v1+json"
PAGE = "/simple/sample-pkg/"


@pytest.mark.parametrize(("path", "accept"), [
    ("/simple/", "text/html"), (PAGE, "text/html"), (PAGE, JSON), (PAGE, "*/*"),
])
def test_a_repeated_request_gets_djangos_bytes_without_django(
    owner: User, app: ResponseCache, django_part: Counted, path: str, accept: str
) -> None:
    first = call_app(app, path, accept=accept)
    kept = call_app(app, path, accept=accept)
    assert first[0] == 200
    assert kept == first  # status, every header, body
    assert django_part.calls == 1
    # Nothing Django sends differs from one request to the next (a nonce, a cookie, a date).
    assert call_app(django_part, path, accept=accept) == kept


def _file_path(version: str, suffix: str = "") -> str:
    file = File.objects.get(release__version=version, filename__endswith=".whl")
    return f"/files/{file.path}{suffix}"


@pytest.mark.parametrize("suffix", ["", ".metadata"])
def test_a_repeated_download_gets_the_same_bytes_without_django(
    owner: User, app: ResponseCache, django_part: Counted, suffix: str
) -> None:
    path = _file_path("1.0", suffix)
    first = call_app(app, path)
    assert first[0] == 200
    assert call_app(app, path) == first
    assert django_part.calls == 1
    assert call_app(django_part, path) == first


def test_a_deleted_release_s_files_are_gone_at_once(
    owner: User, app: ResponseCache, store: ResponseStore
) -> None:
    path = _file_path("1.1")
    assert call_app(app, path)[0] == 200
    _delete(owner)
    assert call_app(app, path)[0] == 404
    assert len(store) == 0


def test_a_file_over_the_limit_keeps_gunicorns_sendfile(
    owner: User, app: ResponseCache, store: ResponseStore, monkeypatch: Any
) -> None:
    monkeypatch.setattr(response_cache, "MAX_RESPONSE_BYTES", 100)
    request = environ(_file_path("1.0")) | {"wsgi.file_wrapper": FileWrapper}
    result = app(request, lambda status, headers, exc_info=None: None)
    try:
        # What gunicorn hands to sendfile(2); a wrapper around it would be read in Python.
        assert isinstance(result, FileWrapper)
    finally:
        result.close()  # type: ignore[attr-defined]
    assert len(store) == 0


def _upload(owner: User) -> None:
    publish(build_wheel(version="1.2"))


def _yank(owner: User) -> None:
    yank_release(request=None, owner=owner, project=Project.objects.get(), version="1.1",
                 reason="broken")


def _unyank(owner: User) -> None:
    unyank_release(request=None, owner=owner, project=Project.objects.get(), version="1.1")


def _delete(owner: User) -> None:
    delete_release(request=None, owner=owner, project=Project.objects.get(), version="1.1",
                   confirmation="1.1")


def _new_project(owner: User) -> None:
    publish(build_wheel("other-pkg"))


def _nothing(owner: User) -> None:
    pass


@pytest.mark.parametrize("accept", ["text/html", JSON])
@pytest.mark.parametrize(("prepare", "change", "path"), [
    (_nothing, _upload, PAGE), (_nothing, _yank, PAGE), (_yank, _unyank, PAGE),
    (_nothing, _delete, PAGE), (_nothing, _new_project, "/simple/"),
])
def test_every_change_reaches_the_next_request(
    owner: User, app: ResponseCache, django_part: Counted, prepare: Callable[[User], None],
    change: Callable[[User], None], path: str, accept: str,
) -> None:
    prepare(owner)
    before = call_app(app, path, accept=accept)
    assert call_app(app, path, accept=accept) == before
    change(owner)
    after = call_app(app, path, accept=accept)
    assert after[0] == 200
    assert after[2] != before[2]
    assert after[1]["etag"] != before[1]["etag"]
    assert django_part.calls == 2
    assert call_app(app, path, accept=accept) == after  # kept again, under the new marker
    assert django_part.calls == 2


@pytest.mark.parametrize("accept", ["text/html", JSON])
def test_a_revalidation_gets_djangos_304_without_django_until_the_page_changes(
    owner: User, app: ResponseCache, django_part: Counted, accept: str
) -> None:
    """pip revalidates its cached pages with If-None-Match; that is most of its requests."""
    etag = call_app(app, PAGE, accept=accept)[1]["etag"][0]
    not_modified = call_app(app, PAGE, accept=accept, if_none_match=etag)
    assert not_modified[0] == 304
    assert call_app(app, PAGE, accept=accept, if_none_match=etag) == not_modified
    assert call_app(django_part, PAGE, accept=accept, if_none_match=etag) == not_modified
    assert django_part.calls == 3
    _upload(owner)
    changed = call_app(app, PAGE, accept=accept, if_none_match=etag)
    assert changed[0] == 200
    assert b"sample_pkg-1.2" in changed[2]


def test_another_etag_gets_its_own_answer(owner: User, app: ResponseCache) -> None:
    full = call_app(app, PAGE)
    etag = full[1]["etag"][0]
    assert call_app(app, PAGE, if_none_match=etag)[0] == 304
    assert call_app(app, PAGE, if_none_match='"not-the-tag"') == full
    assert call_app(app, PAGE, if_none_match=f"W/{etag}")[0] == 304


def test_a_flood_of_distinct_etags_stays_within_the_bound(owner: User, django_part: Counted
                                                         ) -> None:
    """A kept 304 has an empty body; it counts its key and headers, which the client chose,
    so a flood of distinct If-None-Match values cannot grow the store past its bound."""
    store = ResponseStore(max_total=16 * 1024)
    app = ResponseCache(django_part, store)
    etag = call_app(app, PAGE)[1]["etag"][0]
    for n in range(40):
        assert call_app(app, PAGE, if_none_match=f'{etag}, "{n:04d}{"x" * 2000}"')[0] == 304
    assert store.total <= 16 * 1024
    assert 0 < len(store) <= 16 * 1024 // 2000


def test_requests_that_may_get_other_answers_are_kept_apart(
    owner: User, app: ResponseCache, store: ResponseStore, settings: Any
) -> None:
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "localhost"]
    html = call_app(app, PAGE, accept="text/html")
    as_json = call_app(app, PAGE, accept=JSON)
    on_localhost = call_app(app, PAGE, host="localhost", accept="text/html")
    assert html[1]["content-type"] != as_json[1]["content-type"]
    assert call_app(app, PAGE, accept=JSON) == as_json
    assert call_app(app, PAGE, accept="text/html") == html
    assert on_localhost[0] == 200
    assert len(store) == 3


@pytest.mark.parametrize(("method", "path", "extra"), [
    ("HEAD", PAGE, {}),
    ("POST", PAGE, {}),
    ("GET", PAGE, {"query": "format=application/vnd.pypi.simple.v1%2Bjson"}),
    ("GET", PAGE, {"if_modified_since": "Sat, 21 Nov 2026 00:00:00 GMT"}),
    ("GET", PAGE, {"if_match": '"anything"'}),
    ("GET", PAGE, {"range": "bytes=0-10"}),
    ("GET", "/simple/Sample_Pkg/", {}),  # not normalised: Django's redirect
    ("GET", "/simple/no-such-project/", {}),  # a 404 is never kept
    ("GET", "/pypi/sample-pkg/json", {}),
    ("GET", "/account/login/", {}),
])
def test_requests_django_must_judge_always_reach_it(
    owner: User, app: ResponseCache, django_part: Counted, store: ResponseStore,
    method: str, path: str, extra: dict[str, str],
) -> None:
    first = call_app(app, path, method, **extra)
    second = call_app(app, path, method, **extra)
    assert django_part.calls == 2
    assert second[0] == first[0]
    assert len(store) == 0


def test_an_unknown_host_is_refused_even_after_a_page_is_kept(
    owner: User, app: ResponseCache, store: ResponseStore
) -> None:
    """Host validation runs in Django; a 400 is never kept, and a kept page is only ever
    served to a request with the host that Django accepted."""
    assert call_app(app, PAGE)[0] == 200
    for _ in range(2):
        assert call_app(app, PAGE, host="evil.example")[0] == 400
    assert len(store) == 1


def test_a_vanished_project_page_is_dropped_not_served(
    owner: User, app: ResponseCache, store: ResponseStore, clock: FakeClock
) -> None:
    assert call_app(app, PAGE)[0] == 200
    Project.objects.all().delete()  # no service deletes projects; a restore might
    clock.advance(TRUST_SECONDS)  # the stamp knows nothing of it
    assert call_app(app, PAGE)[0] == 404
    assert len(store) == 0


def test_a_page_whose_freshness_cannot_be_read_is_not_served(
    owner: User, app: ResponseCache, django_part: Counted, clock: FakeClock
) -> None:
    """With the database failing when a kept page is due to be checked, the page may be
    stale: Django answers (here a 500)."""
    assert call_app(app, PAGE)[0] == 200
    clock.advance(TRUST_SECONDS)
    table = Project._meta.db_table
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {quote(table)} RENAME TO {quote('moved_away')}")
    try:
        assert call_app(app, PAGE)[0] == 500
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {quote('moved_away')} RENAME TO {quote(table)}")
    assert django_part.calls == 2
    assert call_app(app, PAGE)[0] == 200


def test_a_response_over_the_size_limit_is_sent_but_not_kept(
    owner: User, app: ResponseCache, store: ResponseStore, monkeypatch: Any
) -> None:
    whole = call_app(app, PAGE)
    store.clear()
    monkeypatch.setattr(response_cache, "MAX_RESPONSE_BYTES", len(whole[2]) - 1)
    assert call_app(app, PAGE) == whole
    assert len(store) == 0


def test_a_response_the_client_stopped_reading_is_not_kept(
    owner: User, app: ResponseCache, store: ResponseStore
) -> None:
    result = app(environ(PAGE), lambda status, headers, exc_info=None: None)
    next(iter(result))
    result.close()  # type: ignore[attr-defined]  # as gunicorn does when the client goes away
    assert len(store) == 0


def test_the_application_relatch_serves_keeps_responses(owner: User) -> None:
    assert isinstance(application, ResponseCache)
    assert application.store is response_cache.kept_responses
    assert application.stamp is index_change_stamp()  # the one the services rewrite
    call_app(application, PAGE)
    assert len(response_cache.kept_responses) == 1


@pytest.mark.parametrize(("status", "headers", "keepable"), [
    ("200 OK", [("Vary", "Accept")], True),
    ("200 OK", [("Vary", "accept"), ("ETag", '"x"')], True),
    ("200 OK", [], True),
    ("304 Not Modified", [("ETag", '"x"'), ("Vary", "Accept")], True),
    ("200 OK", [("Vary", "Accept, Cookie")], False),
    ("200 OK", [("Vary", "Authorization")], False),
    ("200 OK", [("Set-Cookie", "a=b")], False),
    ("301 Moved Permanently", [("Location", "/simple/x/")], False),
    ("404 Not Found", [], False),
    ("500 Internal Server Error", [], False),
])
def test_only_a_plain_200_or_304_is_keepable(status: str, headers: list[tuple[str, str]],
                                      keepable: bool) -> None:
    assert is_keepable(status, headers) is keepable


def _kept(size: int) -> KeptResponse:
    return KeptResponse(("project", 1, "x", 1), "200 OK", [], [b"x" * size], size)


def test_the_store_drops_the_least_recently_served_past_its_bound() -> None:
    store = ResponseStore(max_total=100)
    for key in ("a", "b"):
        store.put((key,), _kept(40))
    assert store.get(("a",)) is not None  # "a" served: "b" is now the oldest
    store.put(("c",), _kept(40))
    assert store.get(("b",)) is None
    assert store.get(("a",)) is not None and store.get(("c",)) is not None
    assert store.total == 80
    store.put(("a",), _kept(10))  # replacing an entry counts its new size only
    assert store.total == 50

