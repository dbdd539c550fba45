"""Re-uploading a file the index already holds (issue 20 §4): a CI job that runs twice.

The same name with the same bytes answers 200 and changes nothing but an UPLOAD_SKIPPED event
(and the token's use). It is answered only to someone who may upload to the project: anyone
else gets the same 403 as for a file that does not exist, and learns nothing.
"""

from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from relatch.accounts.models import User
from relatch.audit.models import EventKind, Factor, SecurityEvent
from relatch.index.models import APIToken, File, Project, Release, Role, UsedFilename
from relatch.index.tokens.services import create_token
from relatch.index.upload import publisher as publisher_module
from relatch.index.upload import reuploads, services
from relatch.index.upload.publisher import Publisher
from relatch.index.upload.validation import UploadRefusedError
from tests.index.dists import build_sdist, build_wheel
from tests.index.test_upload import post, refused_with, stored, token_for
from tests.mfa.factor_rows import add_app

NOT_ALLOWED = "You are not allowed to upload to project 'sample-pkg'"


@pytest.fixture
def alice(user: User) -> User:
    return user


@pytest.fixture
def token(alice: User) -> str:
    return token_for(alice)


def snapshot(files_dir: Path) -> dict[str, Any]:
    """Everything a skipped upload must leave as it was."""
    project = Project.objects.get(normalized_name="sample-pkg")
    return {
        "files": list(File.objects.values_list("pk", "filename", "sha256_digest", "path")),
        "releases": list(Release.objects.values_list("pk", "version", "requires_python")),
        "used": list(UsedFilename.objects.values_list("filename", flat=True)),
        "project": (project.generation, project.last_changed_at, project.last_serial),
        "stored": {path: (files_dir / path).stat().st_mtime_ns for path in stored(files_dir)},
        "uploaded_events": SecurityEvent.objects.filter(kind=EventKind.FILE_UPLOADED).count(),
    }


@pytest.mark.parametrize("make", [build_wheel, build_sdist], ids=["wheel", "sdist"])
def test_the_same_file_again_answers_200_and_changes_nothing(
    client: Client, alice: User, token: str, files_dir: Path, make: Any
) -> None:
    dist = make()
    assert post(client, dist, token).status_code == 200
    before = snapshot(files_dir)
    response = post(client, dist, token, summary="A different summary this time")
    assert response.status_code == 200, response.content
    assert response.content.decode() == (
        f"OK: {dist.filename} is already here with the same contents; nothing changed.\n")
    assert snapshot(files_dir) == before
    skipped = SecurityEvent.objects.get(kind=EventKind.UPLOAD_SKIPPED)
    assert (skipped.user, skipped.factor) == (alice, Factor.API_TOKEN)
    assert skipped.details == {"filename": dist.filename, "project": "sample-pkg",
                               "version": "1.0", "sha256": dist.sha256,
                               "token_id": APIToken.objects.get().pk, "token_name": "ci"}
    assert not SecurityEvent.objects.filter(kind=EventKind.UPLOAD_REFUSED).exists()
    assert Release.objects.get().summary == "A sample package"


def test_a_maintainer_rerunning_the_owners_upload_is_skipped_too(
    client: Client, alice: User, token: str, make_user: Any
) -> None:
    dist = build_wheel()
    assert post(client, dist, token).status_code == 200
    bob = make_user(username="bob")
    Role.objects.create(project=Project.objects.get(), user=bob, kind=Role.Kind.MAINTAINER)
    assert post(client, dist, token_for(bob)).status_code == 200
    assert SecurityEvent.objects.get(kind=EventKind.UPLOAD_SKIPPED).user == bob
    assert File.objects.get().uploader == alice


def _stranger_token(make_user: Any, kind: str) -> str:
    """A token that must not reach sample-pkg: another account's, one limited to another
    project, or alice's own read (install) token."""
    if kind == "read token":
        alice = User.objects.get(username="alice")
        _row, text = create_token(request=None, user=alice, name="install", project=None,
                                  expires_at=None, purpose=APIToken.Purpose.READ)
        return text
    mallory = make_user(username="mallory")
    if kind == "no role":
        return token_for(mallory)
    other = Project.objects.create(name="other", normalized_name="other")
    Role.objects.create(project=other, user=mallory, kind=Role.Kind.OWNER)
    return token_for(mallory, other)


@pytest.mark.parametrize("kind", ["no role", "token for another project", "read token"])
def test_someone_without_upload_rights_learns_nothing_from_a_reupload(
    client: Client, token: str, make_user: Any, files_dir: Path, kind: str
) -> None:
    """The answer for alice's existing file is the answer for a file that does not exist: no
    200, no "already exists", no event that would tell the attacker the bytes match."""
    dist = build_wheel()
    assert post(client, dist, token).status_code == 200
    before = snapshot(files_dir)
    stranger = _stranger_token(make_user, kind)
    existing = post(client, dist, stranger)
    absent = post(client, build_wheel(version="9.9"), stranger)
    assert existing.status_code == absent.status_code == 403
    assert existing.content == absent.content.replace(b"9.9", b"1.0")
    assert b"already" not in existing.content
    assert snapshot(files_dir) == before
    assert not SecurityEvent.objects.filter(kind=EventKind.UPLOAD_SKIPPED).exists()


def test_a_read_token_never_uploads(client: Client, alice: User, files_dir: Path) -> None:
    add_app(alice)
    _row, text = create_token(request=None, user=alice, name="install", project=None,
                              expires_at=None, purpose=APIToken.Purpose.READ)
    refused_with(post(client, build_wheel(), text), 403, "This token is not for this use")
    assert not Project.objects.exists() and stored(files_dir) == []
    # Defence in depth: handed to the pipeline directly, it is refused there too.
    with pytest.raises(UploadRefusedError) as refused:
        Publisher.with_token(APIToken.objects.get()).check()
    assert refused.value.status == 403


def test_a_frozen_account_gets_no_200_for_a_reupload(
    client: Client, alice: User, token: str
) -> None:
    from relatch.accounts.freeze import freeze_account

    dist = build_wheel()
    assert post(client, dist, token).status_code == 200
    freeze_account(user=alice, reason="this wasn't me")
    assert post(client, dist, token).status_code == 403
    assert not SecurityEvent.objects.filter(kind=EventKind.UPLOAD_SKIPPED).exists()


def test_the_form_digest_must_match_the_bytes_even_for_a_reupload(
    client: Client, token: str
) -> None:
    """The skip is decided on the digest of the bytes received, not on the form's word."""
    dist = build_wheel()
    assert post(client, dist, token).status_code == 200
    other = build_wheel(module_source="VALUE = 43\n")
    response = post(client, dist, token, content=other.content)
    refused_with(response, 400, "SHA-256 digest does not match")


def test_two_identical_uploads_racing_both_succeed(
    client: Client, alice: User, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs of one CI job at once: both were checked before either committed. The second
    commit finds the name taken with the same bytes, and is a skip, not a 400."""
    dist = build_wheel()
    assert post(client, dist, token).status_code == 200
    calls: list[int] = []

    def first_look_misses(checked: Any) -> File | None:
        calls.append(1)
        return None

    monkeypatch.setattr(services, "_identical", first_look_misses)
    monkeypatch.setattr(reuploads, "refuse_used_name", lambda **_: None)
    response = post(client, dist, token)
    assert response.status_code == 200, response.content
    assert b"already here" in response.content
    assert len(calls) == 1 and File.objects.count() == 1
    assert SecurityEvent.objects.filter(kind=EventKind.UPLOAD_SKIPPED).count() == 1
    monkeypatch.setattr(services, "_identical_after_race", lambda publisher, checked: None)
    refused_with(post(client, dist, token), 400, "was uploaded by another upload just now")


def test_two_identical_first_uploads_of_a_new_project_racing_both_succeed(
    client: Client, alice: User, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both saw no project when checked; the loser finds the winner's file in the project the
    winner made (alice owns it), and is a skip."""
    dist = build_wheel()
    assert post(client, dist, token).status_code == 200
    real_project_for = services._project_for
    monkeypatch.setattr(services, "_project_for",
                        lambda **kwargs: real_project_for(**kwargs) and None)
    monkeypatch.setattr(reuploads, "refuse_used_name", lambda **_: None)
    response = post(client, dist, token)
    assert response.status_code == 200 and b"already here" in response.content
    assert File.objects.count() == 1 and Project.objects.count() == 1


def test_a_skip_is_a_use_of_the_token(
    client: Client, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The skip notes the token's use (its owner sees it in the history)."""
    dist = build_wheel()
    assert post(client, dist, token).status_code == 200
    uses: list[Any] = []
    monkeypatch.setattr(publisher_module, "note_token_use",
                        lambda **kwargs: uses.append(kwargs["token"]))
    assert post(client, dist, token).status_code == 200
    assert [t.pk for t in uses] == [APIToken.objects.get().pk]
