"""Where upload bodies wait, what killed uploads leave, and a full disk (issue 18 §10).

The load tests killed web processes during uploads: each left its temporary file in the
system's /tmp for ever (~300 MB after 7 kills), and a full temporary directory answered 500.
Upload bodies now go to a directory of Relatch's own, ``remove_upload_leftovers`` clears it
(everything at ``relatch serve`` start, files older than a few hours in the daily sweep), and a
full disk is a 503 with Retry-After that changes nothing.
"""

import errno
import os
import time
from pathlib import Path
from typing import Any

import pytest
from django.core.files import uploadhandler
from django.core.files.uploadedfile import TemporaryUploadedFile
from django.test import Client

from relatch.accounts.models import User
from relatch.audit.models import EventKind, SecurityEvent
from relatch.index.upload import storage, temp_files
from relatch.index.upload.tasks import sweep_orphans
from relatch.index.upload.temp_files import LEFTOVER_AGE, remove_upload_leftovers
from tests.index.dists import build_wheel
from tests.index.test_upload import nothing_changed, post, token_for

NO_ROOM = "The server has no room to receive this upload now; try again later."
HOUR = 3600


@pytest.fixture
def temp_dir(settings: Any, tmp_path: Path) -> Path:
    """Upload bodies go to a directory that does not exist yet, always through a temporary
    file (no body is small enough to stay in memory)."""
    location = tmp_path / "data" / "tmp" / "uploads"
    settings.FILE_UPLOAD_TEMP_DIR = str(location)
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0
    return location


def files_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_an_upload_body_waits_in_relatchs_own_directory(
    client: Client, user: User, temp_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The directory is made when first needed, for this account only; the body is written
    there, and nothing is left once the upload is stored."""
    seen: list[Path] = []
    compute = storage.compute_digests

    def noting_where(upload: Any) -> storage.Digests:
        seen.append(Path(upload.temporary_file_path()))
        return compute(upload)

    monkeypatch.setattr(storage, "compute_digests", noting_where)
    assert post(client, build_wheel(), token_for(user)).status_code == 200
    assert [path.parent for path in seen] == [temp_dir]
    assert temp_dir.stat().st_mode & 0o777 == 0o700
    assert files_in(temp_dir) == []


class _FullDiskFile(TemporaryUploadedFile):
    """A temporary file on a full disk: made, but every write fails with ENOSPC. (A really
    full file system cannot be made here without root and a mount of its own; the error is
    the one the kernel gives, raised where Django's handler writes.)"""

    def write(self, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class _NoInodesFile(TemporaryUploadedFile):
    """A full disk refusing even to make the file (no inodes, or a quota: EDQUOT)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))


@pytest.mark.parametrize("full_file", [_FullDiskFile, _NoInodesFile], ids=["write", "create"])
def test_a_full_disk_while_the_body_is_written_is_a_503_that_changes_nothing(
    client: Client, user: User, temp_dir: Path, files_dir: Path,
    monkeypatch: pytest.MonkeyPatch, full_file: type[TemporaryUploadedFile],
) -> None:
    monkeypatch.setattr(uploadhandler, "TemporaryUploadedFile", full_file)
    token = token_for(user)
    response = post(client, build_wheel(), token)
    assert response.status_code == 503, response.content
    assert response.content.decode() == NO_ROOM + "\n"
    assert response.reason_phrase == NO_ROOM
    assert int(response["Retry-After"]) > 0
    assert files_in(temp_dir) == []  # the partial file is gone at once
    nothing_changed(files_dir)
    # The account's owner did nothing wrong: no refusal in their history.
    assert not SecurityEvent.objects.filter(kind=EventKind.UPLOAD_REFUSED).exists()


def test_another_failure_to_write_the_body_stays_an_error(
    client: Client, user: User, temp_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A directory the server may not write to is a fault for the operator to see (500), not
    a passing state to wait out."""

    class Forbidden(TemporaryUploadedFile):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(uploadhandler, "TemporaryUploadedFile", Forbidden)
    with pytest.raises(PermissionError):
        post(client, build_wheel(), token_for(user))


def leftover(directory: Path, name: str, *, age_hours: float, size: int = 1000) -> Path:
    """A file as a killed upload leaves it, last written ``age_hours`` ago."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(b"x" * size)
    then = time.time() - age_hours * HOUR
    os.utime(path, (then, then))
    return path


def test_at_serve_start_every_leftover_is_removed(temp_dir: Path) -> None:
    leftover(temp_dir, "tmpa1.upload.whl", age_hours=30)
    leftover(temp_dir, "tmpb2.upload.gz", age_hours=0, size=500)
    (temp_dir / "not-ours").mkdir()
    removed = remove_upload_leftovers()
    assert (removed.files, removed.bytes) == (2, 1500)
    assert files_in(temp_dir) == ["not-ours"]  # a directory is not an upload's


def test_while_serving_only_old_leftovers_are_removed(temp_dir: Path) -> None:
    old = leftover(temp_dir, "tmpold.upload.whl", age_hours=LEFTOVER_AGE.total_seconds() / HOUR
                   + 1)
    leftover(temp_dir, "tmplive.upload.whl", age_hours=0.1)
    removed = remove_upload_leftovers(older_than=LEFTOVER_AGE)
    assert removed.files == 1
    assert files_in(temp_dir) == ["tmplive.upload.whl"]
    assert not old.exists()


def test_no_directory_yet_is_nothing_to_remove(temp_dir: Path) -> None:
    assert remove_upload_leftovers() == temp_files.LeftoversRemoved()


@pytest.mark.django_db
def test_the_daily_sweep_removes_old_leftovers(temp_dir: Path, files_dir: Path) -> None:
    leftover(temp_dir, "tmpold.upload.whl", age_hours=24, size=300)
    leftover(temp_dir, "tmplive.upload.whl", age_hours=0)
    report = sweep_orphans.call()
    assert (report["upload_leftovers"], report["upload_leftover_bytes"]) == (1, 300)
    assert files_in(temp_dir) == ["tmplive.upload.whl"]
