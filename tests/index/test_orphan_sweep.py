"""The sweep for stored files without a File row (an upload killed between storing its file
and committing): old orphans go, with their .metadata and their own directory; young ones (an
upload may be about to commit) and every file with a row stay, whatever their age."""

import hashlib
import logging
import os
import time
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django_tasks_db.models import DBTaskResult

from relatch.index.models import File
from relatch.index.upload import sweep
from relatch.index.upload.storage import file_storage_path
from relatch.index.upload.sweep import SweepResult, sweep_orphan_files
from relatch.index.upload.tasks import SWEEP_EVERY, sweep_orphans
from relatch.recovery.tasks import recovery_tick
from tests.index.project_rows import add_file, make_project, make_release

pytestmark = pytest.mark.django_db
DAY = timedelta(days=1)
OLD, YOUNG = timedelta(days=2), timedelta(hours=1)



def stored(files_dir: Path) -> set[str]:
    return {str(p.relative_to(files_dir)) for p in files_dir.rglob("*") if p.is_file()}


def age(name: str, by: timedelta) -> None:
    """Set the stored file's modification time ``by`` in the past."""
    then = time.time() - by.total_seconds()
    os.utime(default_storage.path(name), (then, then))


def orphan(filename: str, content: bytes, *, old: timedelta = OLD) -> str:
    """A wheel and its METADATA stored as an upload stores them, with no row: what a kill
    between the save and the commit leaves."""
    path = file_storage_path(hashlib.sha256(content).hexdigest(), filename)
    for name, data in ((path, content), (f"{path}.metadata", b"Metadata-Version: 2.1\n")):
        default_storage.save(name, ContentFile(data))
        age(name, old)
    return path


def published(filename: str, content: bytes, *, old: timedelta = OLD) -> File:
    """A wheel with its row (and its METADATA beside it)."""
    project = make_project("sample-pkg")
    file = add_file(make_release(project, "1.0"), filename, content)
    age(file.path, old)
    age(f"{file.path}.metadata", old)
    return file


@pytest.mark.parametrize(("has_row", "old", "removed"), [
    (False, OLD, True),
    (False, YOUNG, False),  # an upload may have saved it and not committed yet
    (True, OLD, False),
    (True, YOUNG, False),
])
def test_only_old_files_without_a_row_are_removed(
    files_dir: Path, has_row: bool, old: timedelta, removed: bool
) -> None:
    wheel = "sample_pkg-1.0-py3-none-any.whl"
    path = (published(wheel, b"wheel bytes", old=old).path if has_row
            else orphan(wheel, b"wheel bytes", old=old))
    result = sweep_orphan_files(older_than=DAY, dry_run=False)
    left = stored(files_dir)
    assert (path not in left) is removed
    assert (f"{path}.metadata" not in left) is removed
    assert Path(files_dir, path).parent.is_dir() is not removed  # the file's own directory
    expected = (2, 11 + 22, 1) if removed else (0, 0, 0)
    assert (result.removed, result.removed_bytes, result.directories_removed) == expected
    assert result.scanned == 2


def test_orphans_go_and_published_files_stay_side_by_side(files_dir: Path) -> None:
    kept = published("sample_pkg-1.0-py3-none-any.whl", b"kept")
    gone = orphan("sample_pkg-1.1-py3-none-any.whl", b"gone")
    young = orphan("sample_pkg-1.2-py3-none-any.whl", b"young", old=YOUNG)
    sweep_orphan_files(older_than=DAY, dry_run=False)
    assert stored(files_dir) == {kept.path, f"{kept.path}.metadata", young,
                                 f"{young}.metadata"}
    assert gone not in stored(files_dir)
    assert Path(files_dir, gone).parent.parent.is_dir()  # the shared fan-out levels stay


def test_a_dry_run_removes_nothing_but_says_what_it_would(files_dir: Path) -> None:
    path = orphan("sample_pkg-1.0-py3-none-any.whl", b"wheel bytes")
    before = stored(files_dir)
    seen: list[tuple[str, int]] = []
    result = sweep_orphan_files(older_than=DAY, dry_run=True,
                                on_orphan=lambda name, size: seen.append((name, size)))
    assert stored(files_dir) == before
    assert seen == [(path, 11), (f"{path}.metadata", 22)]
    assert (result.dry_run, result.removed, result.directories_removed) == (True, 2, 0)


def test_each_removal_is_logged_with_its_path_and_size(caplog: Any) -> None:
    path = orphan("sample_pkg-1.0-py3-none-any.whl", b"wheel bytes")
    with caplog.at_level(logging.INFO, logger="relatch.index.upload.sweep"):
        sweep_orphan_files(older_than=DAY, dry_run=False)
    assert f"Removed orphan file {path} (11 bytes)" in caplog.messages


def test_files_are_looked_up_in_chunks_not_one_by_one(
    monkeypatch: Any, django_assert_num_queries: Any
) -> None:
    """Twelve stored files (six wheels, six METADATA), all with rows: two lookups of six."""
    project = make_project("sample-pkg")
    for minor in range(6):
        file = add_file(make_release(project, f"1.{minor}"),
                        f"sample_pkg-1.{minor}-py3-none-any.whl", f"wheel {minor}".encode())
        age(file.path, OLD)
        age(f"{file.path}.metadata", OLD)
    monkeypatch.setattr(sweep, "LOOKUP_CHUNK", 6)
    with django_assert_num_queries(2):
        result = sweep_orphan_files(older_than=DAY, dry_run=False)
    assert (result.scanned, result.removed) == (12, 0)


def test_an_empty_storage_is_swept_without_error() -> None:
    assert sweep_orphan_files(older_than=DAY, dry_run=False) == SweepResult(dry_run=False)


@pytest.mark.parametrize(("options", "removed"), [
    ([], False),  # 3 hours old: younger than the default day
    (["--older-than-hours", "2"], True),
    (["--older-than-hours", "2", "--dry-run"], False),
])
def test_the_command_says_what_it_did(
    files_dir: Path, options: list[str], removed: bool
) -> None:
    path = orphan("sample_pkg-1.0-py3-none-any.whl", b"wheel bytes", old=timedelta(hours=3))
    out = StringIO()
    call_command("sweep_orphan_files", *options, stdout=out)
    text = out.getvalue()
    assert (path in stored(files_dir)) is not removed
    if removed:
        assert f"removed {path} (11 bytes)" in text
        assert "Removed 2 orphan files (33 bytes) and 1 empty directory." in text
    elif "--dry-run" in options:
        assert f"would remove {path} (11 bytes)" in text
        assert "Dry run: would remove 2 orphan files (33 bytes); nothing was removed." in text
    else:
        assert "Removed 0 orphan files (0 bytes)" in text
        assert "2 newer than 24 hours left alone" in text


def test_the_command_refuses_an_age_that_could_catch_an_upload_in_flight(
    files_dir: Path
) -> None:
    orphan("sample_pkg-1.0-py3-none-any.whl", b"wheel bytes")
    with pytest.raises(CommandError, match="at least 1"):
        call_command("sweep_orphan_files", "--older-than-hours", "0", stdout=StringIO())
    assert len(stored(files_dir)) == 2


def sweeps_waiting() -> list[DBTaskResult]:
    return list(DBTaskResult.objects.filter(task_path=sweep_orphans.module_path,
                                            status="READY"))


def test_the_recovery_tick_queues_one_sweep_a_day() -> None:
    first = recovery_tick.call()
    second = recovery_tick.call()
    assert (first["orphan_sweep_queued"], second["orphan_sweep_queued"]) == (True, False)
    [waiting] = sweeps_waiting()
    assert abs(waiting.run_after - waiting.enqueued_at - SWEEP_EVERY) < timedelta(minutes=1)


def test_the_sweep_task_removes_old_orphans(files_dir: Path) -> None:
    path = orphan("sample_pkg-1.0-py3-none-any.whl", b"wheel bytes")
    report = sweep_orphans.call()
    assert (report["removed"], report["removed_bytes"]) == (2, 33)
    assert path not in stored(files_dir)
