"""Serving stored upstream files as local ones are (ranges, Last-Modified), not letting anyone
make Relatch hammer the upstream (remembered 404s, invalid names, a bound on fetches at
once), and sweeping stored upstream copies that lost their row."""

import os
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client
from django.utils.http import http_date

from relatch.index.models import UpstreamFile
from relatch.index.upstream import client as upstream_client
from relatch.index.upstream.sweep import sweep_upstream_orphans
from tests.index.upstream.fake_upstream import FakeUpstream, Route
from tests.index.upstream.upstream_case import WHEEL, age_page, download, file_url, page

DAY = timedelta(days=1)


def test_a_stored_upstream_file_resumes_with_a_range_and_has_last_modified(
    client: Client, upstream: FakeUpstream
) -> None:
    url = file_url(client)
    assert download(client, url)[1] == WHEEL.content  # relayed while it is stored
    first, data = download(client, url)
    assert (first.status_code, data) == (200, WHEEL.content)
    assert first["Accept-Ranges"] == "bytes"
    stored_at = UpstreamFile.objects.get().stored_at
    assert first["Last-Modified"] == http_date(stored_at.timestamp())
    # The interrupted download resumes: only the missing bytes, from the stored copy.
    response = client.get(url, headers={"Range": "bytes=100-"})
    assert response.status_code == 206
    assert b"".join(response.streaming_content) == WHEEL.content[100:]
    assert response["Content-Range"] == f"bytes 100-{len(WHEEL.content) - 1}/{len(WHEEL.content)}"
    # If-Range naming other bytes: the whole file, never a slice glued to the wrong start.
    other = client.get(url, headers={"Range": "bytes=100-", "If-Range": '"' + "0" * 64 + '"'})
    assert other.status_code == 200
    assert b"".join(other.streaming_content) == WHEEL.content
    unsatisfiable = client.get(url, headers={"Range": f"bytes={len(WHEEL.content)}-"})
    assert unsatisfiable.status_code == 416
    since = client.get(url, headers={"If-Modified-Since": first["Last-Modified"]})
    assert since.status_code == 304
    assert len(upstream.requests_for("/dl/")) == 1


def test_a_range_on_the_first_download_stores_the_whole_file(
    client: Client, upstream: FakeUpstream
) -> None:
    response = client.get(file_url(client), headers={"Range": "bytes=0-9"})
    assert response.status_code == 206
    assert b"".join(response.streaming_content) == WHEEL.content[:10]
    assert UpstreamFile.objects.get().size == len(WHEEL.content)


@pytest.mark.parametrize(("seconds", "upstream_asked"), [(600, 1), (0, 3)])
def test_an_upstream_404_is_remembered_for_the_page_time(
    client: Client, upstream: FakeUpstream, settings: Any, seconds: int, upstream_asked: int
) -> None:
    """The attack: a made-up name asked for over and over. Each must not reach the
    upstream; it is asked once per UPSTREAM_PAGE_SECONDS."""
    settings.UPSTREAM_PAGE_SECONDS = seconds
    for _ in range(3):
        response = page(client, "made-up-name")
        assert response.status_code == 404
    assert len(upstream.requests_for("/simple/made-up-name/")) == upstream_asked


def test_a_page_the_upstream_drops_is_then_remembered_missing(
    client: Client, upstream: FakeUpstream
) -> None:
    assert page(client, "up-pkg").status_code == 200
    del upstream.routes["/simple/up-pkg/"]
    age_page("up-pkg")
    assert page(client, "up-pkg").status_code == 404
    assert page(client, "up-pkg").status_code == 404
    assert len(upstream.requests_for("/simple/up-pkg/")) == 2


@pytest.mark.parametrize("path", [
    "/simple/../", "/simple/-/", "/simple/_x_/", "/simple/a%20b/", "/simple/%C5%BFetuptools/",
    f"/simple/{'a' * 201}/", "/simple/a%3Fb/", "/simple/.hidden/",
])
def test_invalid_names_never_reach_the_upstream(
    client: Client, upstream: FakeUpstream, path: str
) -> None:
    response = client.get(path, follow=True)
    assert response.status_code == 404
    assert upstream.seen == []


def test_page_fetches_at_once_are_bounded(
    client: Client, upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With every slot taken, a name with no kept page waits briefly, then is a 502 without
    an upstream request; a kept page is served stale."""
    assert page(client, "up-pkg").status_code == 200
    slots = threading.BoundedSemaphore(1)
    slots.acquire()
    monkeypatch.setattr(upstream_client, "_page_slots", slots)
    monkeypatch.setattr(upstream_client, "PAGE_SLOT_WAIT", 0.05)
    busy = page(client, "other-pkg")
    assert busy.status_code == 502
    assert "fetches already under way" in busy.content.decode()
    age_page("up-pkg")
    stale = page(client, "up-pkg")
    assert (stale.status_code, stale["X-Relatch-Upstream"]) == (200, "stale")
    assert upstream.requests_for("other-pkg") == []
    assert len(upstream.requests_for("/simple/up-pkg/")) == 1
    slots.release()
    assert page(client, "up-pkg")["X-Relatch-Upstream"] == "fresh"


def _age(name: str, by: timedelta) -> None:
    then = time.time() - by.total_seconds()
    os.utime(default_storage.path(name), (then, then))


def _stored(files_dir: Path) -> set[str]:
    return {str(p.relative_to(files_dir)) for p in files_dir.rglob("*") if p.is_file()}


@pytest.mark.parametrize("dry_run", [False, True])
def test_the_sweep_removes_old_upstream_copies_without_a_row(
    client: Client, upstream: FakeUpstream, files_dir: Path, dry_run: bool
) -> None:
    assert download(client, file_url(client))[0].status_code == 200
    kept = UpstreamFile.objects.get().storage_name
    digest = WHEEL.sha256
    base = f"upstream/{digest[:2]}/{digest[2:4]}/{digest[4:]}"
    old_orphan = default_storage.save(f"{base}/aaaa/{WHEEL.filename}", ContentFile(b"lost"))
    young_orphan = default_storage.save(f"{base}/bbbb/{WHEEL.filename}", ContentFile(b"new"))
    for name in (kept, old_orphan):
        _age(name, 2 * DAY)
    _age(young_orphan, timedelta(hours=1))  # a first download may be about to commit it
    seen: list[tuple[str, int]] = []
    result = sweep_upstream_orphans(older_than=DAY, dry_run=dry_run,
                                    on_orphan=lambda n, s: seen.append((n, s)))
    assert seen == [(old_orphan, 4)]
    assert (result.scanned, result.too_recent, result.removed, result.removed_bytes) == (
        3, 1, 1, 4)
    left = _stored(files_dir)
    assert {kept, young_orphan} <= left
    assert (old_orphan in left) is dry_run
    assert (files_dir / base / "aaaa").exists() is dry_run  # its own directory goes too
    assert download(client, file_url(client))[1] == WHEEL.content


@pytest.mark.django_db
def test_the_sweep_command_and_task_sweep_upstream_copies_too(files_dir: Path) -> None:
    """``relatch sweep_orphan_files`` and the worker's daily task cover ``upstream/``."""
    from io import StringIO

    from django.core.management import call_command

    from relatch.index.upload.tasks import sweep_orphans

    first = default_storage.save(f"upstream/ab/cd/ef/aaaa/{WHEEL.filename}", ContentFile(b"x"))
    _age(first, 2 * DAY)
    out = StringIO()
    call_command("sweep_orphan_files", stdout=out)
    assert f"removed {first} (1 bytes)" in out.getvalue()
    assert first not in _stored(files_dir)
    second = default_storage.save(f"upstream/ab/cd/ef/bbbb/{WHEEL.filename}", ContentFile(b"yy"))
    _age(second, 2 * DAY)
    report = sweep_orphans.call()
    assert report["removed"] == 1 and report["removed_bytes"] == 2
    assert second not in _stored(files_dir)


@pytest.mark.parametrize(("upstream_serves", "status"), [(True, 200), (False, 502)])
def test_a_lost_stored_copy_is_fetched_again_rather_than_a_404_for_ever(
    client: Client, upstream: FakeUpstream, upstream_serves: bool, status: int
) -> None:
    """A restore that did not bring stored upstream copies back, or a store replaced: the
    row outlives its bytes. It is forgotten and the file fetched again, checked against its
    digest; with the upstream failing, the client is told so, and the next request tries."""
    url = file_url(client)
    download(client, url)  # relayed, then stored
    lost = UpstreamFile.objects.get()
    default_storage.delete(lost.storage_name)
    if not upstream_serves:
        upstream.routes[f"/dl/{WHEEL.filename}"] = Route(status=500)
    response = client.get(url)
    assert response.status_code == status
    assert not UpstreamFile.objects.filter(pk=lost.pk).exists()
    if upstream_serves:
        assert b"".join(response.streaming_content) == WHEEL.content
        again = UpstreamFile.objects.get()
        assert default_storage.exists(again.storage_name)
        assert len(upstream.requests_for("/dl/")) == 2
