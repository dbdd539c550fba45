"""/simple/<project>/ and /simple/ are built once per change and kept under their ETag: every
change an installer must see (upload, yank, un-yank, delete) shows on the very next request,
in HTML and in JSON, and a client's old ETag stops matching (200, never a stale 304)."""

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from relatch.accounts.models import User
from relatch.index.manage.releases import delete_release, unyank_release, yank_release
from relatch.index.models import Project
from tests.index.dists import build_wheel
from tests.index.simple_rows import publish
from tests.index.test_upload import post, token_for

pytestmark = pytest.mark.django_db
JSON = "application/vnd.pypi.simple.v1+json"
PAGE = "/simple/sample-pkg/"



def fetch(accept: str, etag: str | None = None) -> Any:
    headers = {"Accept": accept} | ({"If-None-Match": etag} if etag else {})
    return Client().get(PAGE, headers=headers)


def files_of(response: Any) -> dict[str, Any]:
    """filename -> yanked value, from either form of the page."""
    if response["Content-Type"] == JSON:
        return {f["filename"]: f["yanked"] for f in json.loads(response.content)["files"]}
    page = response.content.decode()
    return {line.split(">")[1].split("<")[0]: ("data-yanked" in line)
            for line in page.splitlines() if "<a href" in line}


def _upload(owner: User) -> None:
    response = post(Client(), build_wheel(version="1.2"), token_for(owner))
    assert response.status_code == 200, response.content


def _yank(owner: User) -> None:
    yank_release(request=None, owner=owner, project=Project.objects.get(), version="1.1",
                 reason="broken")


def _delete(owner: User) -> None:
    delete_release(request=None, owner=owner, project=Project.objects.get(), version="1.1",
                   confirmation="1.1")


WHEEL_10, WHEEL_11 = "sample_pkg-1.0-py3-none-any.whl", "sample_pkg-1.1-py3-none-any.whl"
WHEEL_12 = "sample_pkg-1.2-py3-none-any.whl"


@pytest.mark.parametrize("accept", ["text/html", JSON])
@pytest.mark.parametrize(("change", "before_after"), [
    (_upload, ({WHEEL_10, WHEEL_11}, {WHEEL_10, WHEEL_11, WHEEL_12})),
    (_yank, ({WHEEL_11: False}, {WHEEL_11: True})),
    (_delete, ({WHEEL_10, WHEEL_11}, {WHEEL_10})),
])
def test_a_change_shows_at_once_and_the_old_etag_stops_matching(
    owner: User, accept: str, change: Callable[[User], None], before_after: tuple[Any, Any],
) -> None:
    before, after = before_after
    first = fetch(accept)
    etag = first["ETag"]
    assert fetch(accept, etag).status_code == 304  # warm: the cached page's tag
    shown = files_of(fetch(accept))  # served from the cache
    assert _subset(before, shown)

    change(owner)

    fresh = fetch(accept, etag)
    assert fresh.status_code == 200
    assert fresh["ETag"] != etag
    assert _subset(after, files_of(fresh))
    assert fetch(accept, fresh["ETag"]).status_code == 304


def _subset(expected: set[str] | dict[str, bool], shown: dict[str, Any]) -> bool:
    if isinstance(expected, set):
        return set(shown) == expected
    return all(bool(shown[name]) is value for name, value in expected.items())


@pytest.mark.parametrize("accept", ["text/html", JSON])
def test_an_unyank_shows_at_once(owner: User, accept: str) -> None:
    _yank(owner)
    yanked = fetch(accept)
    assert files_of(yanked)[WHEEL_11]
    unyank_release(request=None, owner=owner, project=Project.objects.get(), version="1.1")
    fresh = fetch(accept, yanked["ETag"])
    assert fresh.status_code == 200
    assert not files_of(fresh)[WHEEL_11]


def test_html_and_json_are_cached_apart() -> None:
    """One project, two bodies: each format has its own ETag, hence its own cache entry."""
    publish(build_wheel())
    html, as_json = fetch("text/html"), fetch(JSON)
    assert html["ETag"] != as_json["ETag"]
    assert fetch("text/html").content == html.content
    assert json.loads(fetch(JSON).content) == json.loads(as_json.content)
    assert fetch(JSON)["Content-Type"] == JSON


def test_the_index_shows_a_new_project_at_once() -> None:
    publish(build_wheel())
    first = Client().get("/simple/")
    etag = first["ETag"]
    assert b"sample-pkg" in b"".join(first.streaming_content)
    assert b"sample-pkg" in b"".join(Client().get("/simple/").streaming_content)  # cached
    publish(build_wheel("other-pkg"))
    fresh = Client().get("/simple/", headers={"If-None-Match": etag})
    assert fresh.status_code == 200
    assert b"other-pkg" in b"".join(fresh.streaming_content)


def test_a_large_index_is_streamed_not_cached(settings: Any, monkeypatch: Any,
                                               django_assert_num_queries: Any) -> None:
    """Above the threshold nothing is kept: each request reads the names again, in chunks."""
    monkeypatch.setattr("relatch.index.simple.views.INDEX_CACHE_MAX_PROJECTS", 2)
    for n in range(3):
        publish(build_wheel(f"project-{n}"))
    for _ in range(2):
        with django_assert_num_queries(2):  # the ETag's state, then the names: no cache hit
            body = b"".join(Client().get("/simple/").streaming_content)
        assert body.count(b"<a href") == 3
