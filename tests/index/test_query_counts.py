"""Every public index page costs a fixed number of queries, whatever the number of projects,
releases, files or maintainers (issue 7 §4): a page that grew with them would be the first to
fall over under installers (the 2,000-file project) or at 200 000 projects.

Each test measures a page at a small size, grows the data tenfold, and measures again: both
counts must equal the number stated (so a new N+1 fails here even on small data). "Cold" is a
first request after a change (nothing cached); "warm" is a repeat, served from the page cache.
"""

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from relatch.accounts.models import User
from relatch.index.models import Project, Role
from tests.index.dists import build_sdist, build_wheel
from tests.index.simple_rows import publish

pytestmark = pytest.mark.django_db
JSON = "application/vnd.pypi.simple.v1+json"



def queries_for(path: str, accept: str = "text/html") -> int:
    """The number of queries one anonymous GET of ``path`` runs (it must answer 200)."""
    client = Client()  # a plain client: the fixture's also polls the task queue
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path, headers={"Accept": accept})
        if response.streaming:
            b"".join(response.streaming_content)  # /simple/ reads its names while streaming
    assert response.status_code == 200, path
    return len(captured.captured_queries)


def add_releases(project: str, versions: range) -> None:
    """A wheel and an sdist per version."""
    for minor in versions:
        publish(build_wheel(project, f"1.{minor}"))
        publish(build_sdist(project, f"1.{minor}"))


def counts_at_two_sizes(grow: Callable[[range], None], measure: Callable[[], int]
                        ) -> tuple[int, int]:
    grow(range(2))
    small = measure()
    grow(range(2, 20))
    return small, measure()


@pytest.mark.parametrize(("accept", "cold", "warm"), [("text/html", 2, 1), (JSON, 3, 1)])
def test_simple_project_page(accept: str, cold: int, warm: int) -> None:
    """Cold: the project's row, its files with their releases (JSON: and its versions).
    Warm: the project's row only; the body comes from the cache under the ETag."""

    def measure() -> int:
        first = queries_for("/simple/sample-pkg/", accept)
        assert queries_for("/simple/sample-pkg/", accept) == warm
        return first

    assert counts_at_two_sizes(lambda v: add_releases("sample-pkg", v), measure) == (cold, cold)


@pytest.mark.parametrize("accept", ["text/html", JSON])
def test_simple_index(accept: str) -> None:
    """Cold: the ETag's state, then the names (streamed in chunks of 2,000). Warm: the state."""

    def grow(numbers: range) -> None:
        for n in numbers:
            publish(build_wheel(f"project-{n}"))

    def measure() -> int:
        first = queries_for("/simple/", accept)
        assert queries_for("/simple/", accept) == 1
        return first

    assert counts_at_two_sizes(grow, measure) == (2, 2)


def test_a_download() -> None:
    file = publish(build_wheel())
    assert queries_for(f"/files/{file.path}") == 1
    assert queries_for(f"/files/{file.path}.metadata") == 2  # not a file path, then its wheel


def test_pypi_project_json() -> None:
    """The project, its releases, their files (one prefetch)."""
    counts = counts_at_two_sizes(lambda v: add_releases("sample-pkg", v),
                                 lambda: queries_for("/pypi/sample-pkg/json"))
    assert counts == (3, 3)


def test_pypi_release_json() -> None:
    counts = counts_at_two_sizes(lambda v: add_releases("sample-pkg", v),
                                 lambda: queries_for("/pypi/sample-pkg/1.1/json"))
    assert counts == (3, 3)


def test_project_page_with_releases_and_maintainers(make_user: Any) -> None:
    """The project, its releases, the shown release's files, the maintainers with their
    accounts, the shown release's description."""

    def grow(numbers: range) -> None:
        add_releases("sample-pkg", numbers)
        project = Project.objects.get()
        for _ in numbers:
            Role.objects.create(project=project, user=make_user(), kind=Role.Kind.MAINTAINER)

    counts = counts_at_two_sizes(grow, lambda: queries_for("/project/sample-pkg/"))
    assert counts == (5, 5)


def test_user_page_with_projects(user: User) -> None:
    """The account, then its roles with their projects."""

    def grow(numbers: range) -> None:
        for n in numbers:
            publish(build_wheel(f"project-{n}"))
            project = Project.objects.get(normalized_name=f"project-{n}")
            Role.objects.create(project=project, user=user, kind=Role.Kind.OWNER)

    counts = counts_at_two_sizes(grow, lambda: queries_for(f"/user/{user.username}/"))
    assert counts == (2, 2)
