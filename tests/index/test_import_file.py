"""``relatch index_import_file``: an operator adds existing wheels and sdists to the index,
through the same pipeline as a twine upload, published as the account ``--owner`` names."""

import hashlib
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.test import Client

from relatch.accounts.freeze import freeze_account
from relatch.accounts.models import User
from relatch.audit.models import EventKind, SecurityEvent
from relatch.index.models import APIToken, File, Project, Release, Role, UsedFilename
from relatch.index.upload.storage import file_storage_path
from relatch.mfa.policy import owns_projects
from tests.index.dists import build_sdist, build_wheel
from tests.index.project_rows import make_project
from tests.index.test_upload import post, token_for

pytestmark = pytest.mark.django_db


def _write(tmp_path: Path, dist: Any) -> Path:
    path = tmp_path / dist.filename
    path.write_bytes(dist.content)
    return path


def _import(*args: str) -> str:
    out = StringIO()
    call_command("index_import_file", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def maria(make_user: Any) -> User:
    return make_user(username="maria")


def test_import_creates_rows_and_stores_bytes_and_metadata(
    tmp_path: Path, client: Client, maria: User
) -> None:
    wheel = build_wheel("Sample_Pkg", "1.0", project_urls={"Repository": "https://git.example/x"})
    sdist = build_sdist("Sample_Pkg", "1.0")
    out = _import(str(_write(tmp_path, wheel)), str(_write(tmp_path, sdist)),
                  "--project", "Sample_Pkg", "--owner", "maria")
    assert f"imported {wheel.filename}" in out
    project = Project.objects.get()
    assert (project.name, project.normalized_name) == ("Sample_Pkg", "sample-pkg")
    release = Release.objects.get()
    assert release.version == "1.0"
    assert release.summary == "A sample package"
    assert release.requires_python == ">=3.8"
    assert release.project_urls == {"Repository": "https://git.example/x"}
    stored = File.objects.get(filename=wheel.filename)
    assert stored.sha256_digest == wheel.sha256
    assert f"imported {wheel.filename} as /files/{stored.path}\n" in out
    assert default_storage.open(stored.path).read() == wheel.content
    assert stored.metadata_sha256_digest == hashlib.sha256(wheel.metadata.encode()).hexdigest()
    assert File.objects.get(filename=sdist.filename).metadata_sha256_digest == ""
    assert UsedFilename.objects.count() == 2
    response = client.get(f"/files/{stored.path}.metadata")
    assert b"".join(response.streaming_content) == wheel.metadata.encode()


def _import_both(*args: str) -> tuple[str, str, CommandError | None]:
    """stdout, stderr and the CommandError (the non-zero exit) of one run, if any."""
    out, err = StringIO(), StringIO()
    try:
        call_command("index_import_file", *args, stdout=out, stderr=err)
    except CommandError as error:
        return out.getvalue(), err.getvalue(), error
    return out.getvalue(), err.getvalue(), None


def test_a_rerun_skips_what_is_there_and_imports_the_rest(tmp_path: Path, maria: User) -> None:
    """A migration interrupted half-way is simply run again: files already held (same name,
    same sha256) are reported and skipped, the rest imported, and the run exits 0."""
    first, second = build_wheel(), build_sdist()
    paths = [str(_write(tmp_path, first)), str(_write(tmp_path, second))]
    _import(paths[0], "--owner", "maria")
    before = list(File.objects.values_list("pk", "sha256_digest", "path"))
    out, err, failed = _import_both(*paths, "--owner", "maria")
    assert failed is None and err == ""
    assert f"skipped {first.filename}: already there\n" in out
    assert f"imported {second.filename} as /files/" in out
    assert list(File.objects.filter(pk=before[0][0]).values_list(
        "pk", "sha256_digest", "path")) == before
    out, err, failed = _import_both(*paths, "--owner", "maria")
    assert failed is None and out.count("already there") == 2
    assert File.objects.count() == 2 and UsedFilename.objects.count() == 2
    skips = SecurityEvent.objects.filter(user=maria, kind=EventKind.UPLOAD_SKIPPED)
    assert skips.count() == 3
    assert skips.first().details["by"] == "operator import"  # type: ignore[union-attr]


def test_a_failed_file_does_not_stop_the_others_but_fails_the_run(
    tmp_path: Path, maria: User
) -> None:
    wheel = build_wheel()
    _import(str(_write(tmp_path, wheel)), "--owner", "maria")
    changed = tmp_path / "changed"
    changed.mkdir()
    other_bytes = _write(changed, build_wheel(module_source="VALUE = 43\n"))
    bad = tmp_path / "not-a-distribution.txt"
    bad.write_text("x")
    later = build_wheel(version="2.0")
    out, err, failed = _import_both(
        str(other_bytes), str(bad), str(tmp_path / "missing.whl"),
        str(_write(tmp_path, later)), "--owner", "maria")
    assert failed is not None
    assert str(failed) == ("3 of 4 files failed: sample_pkg-1.0-py3-none-any.whl, "
                           "not-a-distribution.txt, missing.whl")
    assert f"failed {wheel.filename}: File already exists: '{wheel.filename}' is already in " \
        "this index with other contents" in err
    assert "failed not-a-distribution.txt: Not a wheel" in err
    assert "missing.whl: no such file" in err
    assert f"imported {later.filename}" in out
    assert sorted(File.objects.values_list("filename", flat=True)) == sorted(
        [wheel.filename, later.filename])
    assert File.objects.get(filename=wheel.filename).sha256_digest == wheel.sha256


def test_import_refuses_a_wrong_project(tmp_path: Path, maria: User) -> None:
    other = _write(tmp_path, build_wheel(version="2.0"))
    with pytest.raises(CommandError, match="1 of 1 files failed"):
        _import(str(other), "--project", "other", "--owner", "maria")
    out, err, _failed = _import_both(str(other), "--project", "other", "--owner", "maria")
    assert "not a file of other" in err
    assert not File.objects.exists()


def test_import_can_name_an_owner_who_may_then_upload(tmp_path: Path, maria: User) -> None:
    wheel = _write(tmp_path, build_wheel("owned-pkg", "1.0"))
    _import(str(wheel), "--owner", "MARIA")
    role = Role.objects.get(project__normalized_name="owned-pkg")
    assert (role.user, role.kind) == (maria, Role.Kind.OWNER)
    assert owns_projects(maria)
    # As for an upload that creates a project: PROJECT_CREATED on the owner's account.
    created = SecurityEvent.objects.get(user=maria, kind=EventKind.PROJECT_CREATED)
    assert created.details == {"project": "owned-pkg", "by": "operator import"}
    response = post(Client(), build_wheel("owned-pkg", "1.1"), token_for(maria))
    assert response.status_code == 200, response.content


def test_an_import_is_published_as_the_owner_like_an_upload(
    tmp_path: Path, client: Client, maria: User
) -> None:
    """Same rows, storage layout and events as twine's upload; only the way in differs: no
    token, so no token use, and the events say the operator imported in maria's name."""
    uploaded_dist, imported_dist = build_wheel("up-pkg", "1.0"), build_wheel("in-pkg", "1.0")
    assert post(client, uploaded_dist, token_for(maria)).status_code == 200
    _import(str(_write(tmp_path, imported_dist)), "--owner", "maria")

    uploaded = File.objects.get(filename=uploaded_dist.filename)
    imported = File.objects.get(filename=imported_dist.filename)
    columns = ("packagetype", "python_version", "requires_python", "uploader")
    assert [getattr(imported, c) for c in columns] == [getattr(uploaded, c) for c in columns]
    assert imported.size == len(imported_dist.content)
    assert imported.uploader == maria and imported.release.uploader == maria
    assert imported.path == file_storage_path(imported_dist.sha256, imported_dist.filename)
    assert imported.blake2_256_digest == imported_dist.blake2_256
    assert bool(imported.metadata_sha256_digest) and bool(uploaded.metadata_sha256_digest)
    release_columns = ("summary", "description_content_type", "author_email", "requires_python",
                       "extra_metadata", "uploader")
    assert [getattr(imported.release, c) for c in release_columns] == [
        getattr(uploaded.release, c) for c in release_columns
    ]
    # The METADATA's body, as twine reads it (the test's form fields drop its last newline).
    assert imported.release.description == imported_dist.metadata.split("\n\n", 1)[1]
    assert UsedFilename.objects.get(filename=imported_dist.filename).project_name == "in-pkg"
    assert Role.objects.get(project__normalized_name="in-pkg").user == maria

    events = SecurityEvent.objects.filter(user=maria, details__project="in-pkg")
    assert sorted(e.kind for e in events) == sorted(
        [EventKind.PROJECT_CREATED, EventKind.FILE_UPLOADED])
    file_event = events.get(kind=EventKind.FILE_UPLOADED)
    assert file_event.factor == ""
    assert file_event.details == {"filename": imported_dist.filename, "project": "in-pkg",
                                  "version": "1.0", "sha256": imported_dist.sha256,
                                  "by": "operator import"}
    assert APIToken.objects.get().last_used_at is not None  # the upload's, not the import's
    assert SecurityEvent.objects.filter(user=maria, kind=EventKind.API_TOKEN_USED).count() == 1


def test_an_existing_project_takes_imports_only_from_its_members(
    tmp_path: Path, make_user: Any, maria: User
) -> None:
    """As for uploads: naming an account does not make it an owner of someone else's project."""
    owner = make_user(username="olga")
    make_project("sample-pkg", owners=(owner,), maintainers=(maria,))
    stranger = make_user(username="sam")
    _out, err, failed = _import_both(
        str(_write(tmp_path, build_wheel(version="1.0"))), "--owner", "sam")
    assert failed is not None and "not allowed to upload to project 'sample-pkg'" in err
    assert not Role.objects.filter(user=stranger).exists()
    assert not File.objects.exists() and not UsedFilename.objects.exists()
    _import(str(_write(tmp_path, build_wheel(version="1.1"))), "--owner", "maria")
    assert File.objects.get().uploader == maria
    assert set(Role.objects.values_list("user__username", "kind")) == {
        ("olga", Role.Kind.OWNER), ("maria", Role.Kind.MAINTAINER)}


def test_a_frozen_account_publishes_nothing_by_import_either(tmp_path: Path, maria: User) -> None:
    freeze_account(user=maria, reason="this wasn't me")
    _out, err, failed = _import_both(str(_write(tmp_path, build_wheel())), "--owner", "maria")
    assert failed is not None and "this account is frozen" in err
    assert not Project.objects.exists() and not UsedFilename.objects.exists()


def test_the_upload_checks_apply_to_imports(tmp_path: Path, maria: User) -> None:
    """A wheel whose name says another version than its METADATA is refused, as uploaded."""
    wheel = build_wheel(version="1.0")
    renamed = tmp_path / wheel.filename.replace("-1.0-", "-2.0-")
    renamed.write_bytes(wheel.content)
    missing = "not a valid wheel: it has no sample_pkg-2.0.dist-info/METADATA"
    _out, err, failed = _import_both(str(renamed), "--owner", "maria")
    assert failed is not None and missing in err
    assert not Project.objects.exists()


def test_import_needs_an_owner_and_refuses_an_unknown_one(tmp_path: Path) -> None:
    wheel = _write(tmp_path, build_wheel("owned-pkg", "1.0"))
    with pytest.raises(CommandError, match="--owner"):
        _import(str(wheel))
    with pytest.raises(CommandError, match="no account named nobody"):
        _import(str(wheel), "--owner", "nobody")
    assert not Project.objects.exists()
