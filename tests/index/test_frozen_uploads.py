"""Uploads of a frozen account (DESIGN §5, relatch.accounts.freeze): its API tokens still
authenticate, but nothing is published under its name until staff unfreeze it.

The refusal reaches a twine user as every upload refusal does: 403, the message as the reason
phrase (which twine prints) and as the body. The last test runs the real twine.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from relatch.accounts.freeze import AccountFrozenError, freeze_account
from relatch.accounts.models import User
from relatch.audit.models import EventKind, SecurityEvent
from relatch.index.models import APIToken, File, Project, Release, UsedFilename
from relatch.index.upload import storage
from tests.index.dists import build_wheel
from tests.index.project_rows import make_project
from tests.index.test_twine import SETUP, Index, said
from tests.index.test_upload import post, refused_with, stored, token_for
from tests.serving import running_server

pytestmark = pytest.mark.django_db

FROZEN = AccountFrozenError("Uploading").message


@pytest.fixture
def alice(user: User) -> User:
    return user


@pytest.fixture
def token(alice: User) -> str:
    return token_for(alice)


def published() -> dict[str, int]:
    return {"projects": Project.objects.count(), "releases": Release.objects.count(),
            "files": File.objects.count(), "names": UsedFilename.objects.count()}


@pytest.mark.parametrize("project", ["new", "existing"])
def test_a_frozen_accounts_token_publishes_nothing(
    client: Client, alice: User, token: str, files_dir: Path, project: str
) -> None:
    if project == "existing":
        make_project("sample-pkg", owners=(alice,))
    freeze_account(user=alice, reason="test")
    before = published()

    response = post(client, build_wheel(), token)

    refused_with(response, 403, FROZEN)  # the status, the body and the reason phrase
    assert published() == before
    assert stored(files_dir) == []
    assert not SecurityEvent.objects.filter(
        kind__in=[EventKind.FILE_UPLOADED, EventKind.PROJECT_CREATED, EventKind.API_TOKEN_USED]
    ).exists()
    assert APIToken.objects.get().last_used_at is None
    # The owner sees in their history what was tried with their token.
    refused = SecurityEvent.objects.get(user=alice, kind=EventKind.UPLOAD_REFUSED)
    assert refused.details["message"] == FROZEN


def test_once_unfrozen_the_same_token_uploads(
    client: Client, alice: User, token: str, files_dir: Path
) -> None:
    freeze_account(user=alice, reason="test")
    refused_with(post(client, build_wheel(), token), 403, FROZEN)
    User.objects.filter(pk=alice.pk).update(is_frozen=False)

    response = post(client, build_wheel(), token)

    assert response.status_code == 200, response.content
    assert File.objects.get().uploader == alice
    assert SecurityEvent.objects.filter(user=alice, kind=EventKind.FILE_UPLOADED).exists()


def test_a_freeze_while_the_file_is_checked_still_stops_it(
    client: Client, alice: User, token: str, files_dir: Path, monkeypatch: Any
) -> None:
    """The check is made again inside the transaction that writes the rows. The freeze
    arrives "during" the upload through a wrapped digest step: the real race (staff freezing
    while a large file streams in) cannot be timed in a test."""
    compute_digests = storage.compute_digests

    def freeze_meanwhile(upload: Any) -> Any:
        freeze_account(user=alice, reason="test")
        return compute_digests(upload)

    monkeypatch.setattr(storage, "compute_digests", freeze_meanwhile)

    refused_with(post(client, build_wheel(), token), 403, FROZEN)
    assert published() == {"projects": 0, "releases": 0, "files": 0, "names": 0}
    assert stored(files_dir) == []


# --- the real twine ---------------------------------------------------------------------------

FREEZE = """
import json
from relatch.accounts.freeze import freeze_account
from relatch.accounts.models import User
frozen = freeze_account(user=User.objects.get(username="maria"), reason="test")
print("FROZEN " + json.dumps({"frozen": frozen}))
"""


@pytest.fixture(scope="module")
def frozen_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    """A running server with maria's token (tests/index/test_twine.py), maria then frozen."""
    tmp = tmp_path_factory.mktemp("frozen-twine")
    with running_server(tmp) as server:
        work = tmp / "dists"
        work.mkdir()
        index = Index(server, "", work)
        index.token = str(index.shell(SETUP, "SETUP")["token"])
        assert index.shell(FREEZE, "FROZEN") == {"frozen": True}
        yield index


@pytest.mark.own_database
@pytest.mark.slow
def test_twine_shows_that_the_account_is_frozen(frozen_index: Index) -> None:
    done = frozen_index.twine(build_wheel("twine-frozen", "1.0"))
    assert done.returncode != 0
    assert "403 Forbidden" in said(done)
    assert "Uploading is not possible now: this account is frozen" in said(done)
