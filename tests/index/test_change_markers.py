"""The installer pages' ETags come from counters, not clocks (relatch.index.changes).

/simple/ is keyed on the index's one row, bumped only when the list of projects changes (so
an upload to an existing project never waits on it); a project's pages are keyed on its
generation, bumped by every change they show, so a clock stepped back cannot hide a change.
"""

import importlib
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.test import Client
from django.utils import timezone

from relatch.accounts.models import User
from relatch.index.manage.releases import delete_release, unyank_release, yank_release
from relatch.index.models import IndexState, Project
from relatch.index.upload.imports import import_distribution
from tests.index.dists import build_wheel
from tests.index.test_upload import post, token_for

pytestmark = pytest.mark.django_db
JSON = "application/vnd.pypi.simple.v1+json"



def _upload(owner: User, name: str, version: str) -> None:
    response = post(Client(), build_wheel(name, version), token_for(owner))
    assert response.status_code == 200, response.content


def _import(owner: User, tmp_path: Path, name: str, version: str) -> None:
    dist = build_wheel(name, version)
    source = tmp_path / dist.filename
    source.write_bytes(dist.content)
    import_distribution(source=source, owner=owner)


def _yank(owner: User, reason: str = "broken") -> None:
    yank_release(request=None, owner=owner, project=Project.objects.get(), version="1.1",
                 reason=reason)


def _unyank(owner: User) -> None:
    unyank_release(request=None, owner=owner, project=Project.objects.get(), version="1.1")


def _delete(owner: User) -> None:
    delete_release(request=None, owner=owner, project=Project.objects.get(), version="1.1",
                   confirmation="1.1")


def index_generation() -> tuple[str, int]:
    state = IndexState.objects.get()
    return state.epoch, state.generation


def get(path: str, etag: str | None = None, accept: str = "text/html") -> Any:
    headers = {"Accept": accept} | ({"If-None-Match": etag} if etag else {})
    return Client().get(path, headers=headers)


def body(response: Any) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


INDEX_CHANGES: list[tuple[str, Callable[[User, Path], None], bool]] = [
    ("a new project uploaded", lambda u, _: _upload(u, "other-pkg", "1.0"), True),
    ("a new project imported", lambda u, d: _import(u, d, "other-pkg", "1.0"), True),
    ("a new version uploaded", lambda u, _: _upload(u, "sample-pkg", "1.2"), False),
    ("a version imported", lambda u, d: _import(u, d, "sample-pkg", "1.2"), False),
    ("a yank", lambda u, _: _yank(u), False),
    ("a release deleted", lambda u, _: _delete(u), False),
]


@pytest.mark.parametrize(("change", "lists_another_name"),
                         [pytest.param(c, n, id=i) for i, c, n in INDEX_CHANGES])
def test_the_index_etag_changes_only_when_the_list_of_projects_does(
    owner: User, tmp_path: Path, change: Callable[[User, Path], None], lists_another_name: bool,
) -> None:
    before, first = index_generation(), get("/simple/")
    body(first)
    change(owner, tmp_path)
    again = get("/simple/", first["ETag"])
    assert (index_generation() != before) is lists_another_name
    assert again.status_code == (200 if lists_another_name else 304)
    assert (b"other-pkg" in body(again)) is lists_another_name


@pytest.mark.parametrize("first_after_the_loss", ["a read", "a new project"])
def test_a_lost_index_row_is_made_again_with_a_new_etag(
    owner: User, first_after_the_loss: str
) -> None:
    """A restore or a hand-made database without the row: no 500, and no old ETag matches
    (the new row's epoch differs, though its generation counts from 1 again)."""
    old = get("/simple/")
    body(old)
    IndexState.objects.all().delete()
    if first_after_the_loss == "a new project":
        _upload(owner, "other-pkg", "1.0")
    fresh = get("/simple/", old["ETag"])
    assert fresh.status_code == 200
    assert b"sample-pkg" in body(fresh)
    assert IndexState.objects.count() == 1
    assert get("/simple/", fresh["ETag"]).status_code == 304


def test_the_migration_makes_the_index_row() -> None:
    IndexState.objects.all().delete()
    migration = importlib.import_module("relatch.index.migrations.0003_change_generations")
    for _ in range(2):  # idempotent: a second run keeps the one row
        migration.create_index_state(apps, None)
    assert IndexState.objects.get().epoch


def _nothing(owner: User) -> None:
    return None


PROJECT_CHANGES: list[tuple[str, Callable[[User], None], Callable[[User, Path], None]]] = [
    ("upload", _nothing, lambda u, _: _upload(u, "sample-pkg", "1.2")),
    ("import", _nothing, lambda u, d: _import(u, d, "sample-pkg", "1.2")),
    ("yank", _nothing, lambda u, _: _yank(u)),
    ("unyank", _yank, lambda u, _: _unyank(u)),
    ("delete", _nothing, lambda u, _: _delete(u)),
]


@pytest.mark.parametrize(("prepare", "change"),
                         [pytest.param(p, c, id=i) for i, p, c in PROJECT_CHANGES])
def test_every_change_to_a_project_bumps_its_generation_by_one(
    owner: User, tmp_path: Path, prepare: Callable[[User], None],
    change: Callable[[User, Path], None],
) -> None:
    prepare(owner)
    before = Project.objects.get().generation
    change(owner, tmp_path)
    assert Project.objects.get().generation == before + 1


class SteppedClock:
    """What ``timezone.now`` returns: a test cannot move the real clock, so the clock the
    services read is replaced by one the test sets (the only way to step time back)."""

    def __init__(self, start: datetime) -> None:
        self.reading = start

    def __call__(self) -> datetime:
        return self.reading


@pytest.mark.parametrize(("path", "accept"), [
    ("/simple/sample-pkg/", "text/html"),
    ("/simple/sample-pkg/", JSON),
    ("/pypi/sample-pkg/json", "application/json"),
])
def test_a_change_shows_even_after_the_clock_stepped_back(
    owner: User, monkeypatch: pytest.MonkeyPatch, path: str, accept: str
) -> None:
    """NTP steps the clock back a minute between two changes; a minute later the third change
    reads the very time the first did. A time-based ETag would be the first one's again."""
    clock = SteppedClock(timezone.now())
    monkeypatch.setattr(timezone, "now", clock)
    _yank(owner, reason="reason-one")
    first = get(path, accept=accept)
    assert b"reason-one" in body(first)

    clock.reading -= timedelta(minutes=1)
    _unyank(owner)
    assert b"reason-one" not in body(get(path, accept=accept))

    clock.reading += timedelta(minutes=1)
    _yank(owner, reason="reason-two")
    third = get(path, first["ETag"], accept=accept)
    assert third.status_code == 200
    assert b"reason-two" in body(third)
    assert b"reason-two" in body(get(path, accept=accept))  # and not the first body, cached
