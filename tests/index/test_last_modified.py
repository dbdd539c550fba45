"""Last-Modified and If-Modified-Since on the installer pages (RFC 9110 §8.8.2, §13.1.3):
caches and tools that revalidate by date get a 304 for a page that did not change, and never
one for a page that did. (Files: tests/index/test_ranges.py.)"""

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.utils.http import http_date

from relatch.index.models import Project
from tests.index.dists import build_wheel
from tests.index.simple_rows import publish

CHANGED = datetime(2025, 6, 7, 8, 9, 10, 500000, tzinfo=UTC)
CHANGED_HTTP = "Sat, 07 Jun 2025 08:09:10 GMT"
JSON = "application/vnd.pypi.simple.v1+json"
PAGES = [
    ("/simple/sample-pkg/", "text/html"),
    ("/simple/sample-pkg/", JSON),
    ("/pypi/sample-pkg/json", "application/json"),
]


def _publish_changed_at(moment: datetime) -> None:
    publish(build_wheel())
    Project.objects.filter(normalized_name="sample-pkg").update(last_changed_at=moment)


@pytest.fixture
def settled_project(db: None) -> None:
    _publish_changed_at(CHANGED)


@pytest.mark.usefixtures("settled_project")
@pytest.mark.parametrize(("path", "accept"), PAGES)
def test_pages_say_when_the_project_last_changed(client: Client, path: str, accept: str) -> None:
    response = client.get(path, headers={"Accept": accept})
    assert response.status_code == 200
    assert response["Last-Modified"] == CHANGED_HTTP


@pytest.mark.usefixtures("settled_project")
@pytest.mark.parametrize(("path", "accept"), PAGES)
@pytest.mark.parametrize(("since", "status"), [
    (CHANGED_HTTP, 304),
    (http_date((CHANGED + timedelta(hours=1)).timestamp()), 304),
    (http_date((CHANGED - timedelta(seconds=1)).timestamp()), 200),
    ("not a date", 200),
])
def test_if_modified_since_on_a_page(
    client: Client, path: str, accept: str, since: str, status: int
) -> None:
    response = client.get(path, headers={"Accept": accept, "If-Modified-Since": since})
    assert response.status_code == status
    assert response["ETag"]


@pytest.mark.usefixtures("settled_project")
@pytest.mark.parametrize(("path", "accept"), PAGES)
def test_a_tag_the_client_holds_decides_over_its_date(
    client: Client, path: str, accept: str
) -> None:
    """RFC 9110 §13.2.2: If-Modified-Since is ignored when If-None-Match is sent."""
    etag = client.get(path, headers={"Accept": accept})["ETag"]
    stale = client.get(path, headers={
        "Accept": accept, "If-None-Match": '"an-older-page"', "If-Modified-Since": CHANGED_HTTP,
    })
    assert stale.status_code == 200
    fresh = client.get(path, headers={
        "Accept": accept, "If-None-Match": etag,
        "If-Modified-Since": http_date((CHANGED - timedelta(days=1)).timestamp()),
    })
    assert fresh.status_code == 304


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "accept"), PAGES)
def test_a_page_changed_this_second_has_no_date_to_revalidate_by(
    client: Client, path: str, accept: str
) -> None:
    """Two changes within one second would share a date, and a client holding the first
    page would be told it is current: a page gets its date once that second is over."""
    _publish_changed_at(datetime.now(UTC) + timedelta(seconds=5))
    response = client.get(path, headers={"Accept": accept})
    assert response.status_code == 200
    assert "Last-Modified" not in response
    later = http_date((datetime.now(UTC) + timedelta(minutes=1)).timestamp())
    response = client.get(path, headers={"Accept": accept, "If-Modified-Since": later})
    assert response.status_code == 200


@pytest.mark.usefixtures("settled_project")
@pytest.mark.parametrize(("path", "accept"), PAGES)
def test_a_new_upload_is_never_not_modified(client: Client, path: str, accept: str) -> None:
    publish(build_wheel(version="2.0"))  # the project's last change is now
    response = client.get(path, headers={"Accept": accept, "If-Modified-Since": CHANGED_HTTP})
    assert response.status_code == 200
    assert b"2.0" in response.content


@pytest.mark.usefixtures("settled_project")
def test_the_project_list_has_no_date(client: Client) -> None:
    """/simple/ is revalidated by its ETag only: when the list last changed is not stored."""
    response = client.get("/simple/")
    assert response.status_code == 200
    assert "Last-Modified" not in response
