"""What changes while an upload is being checked stops it (issue 18 §7).

The load tests revoked a token while its upload was being read and checked: the upload was
still published (200, 1.8 s after the revocation had committed). An owner who revokes a
token, or removes a member, must be able to trust that nothing more is published with it.

The change is made with the real services (revoke_token, remove_member), committed
(transactional_db), at a moment inside the upload: after the token was authenticated and the
uploader's role checked, while the file's digests are computed. That moment is reached through
a hook (storage.compute_digests wrapped): over a socket, the timing of a revocation against an
upload of a few kilobytes cannot be produced reliably, and a test that only sometimes hits the
window proves nothing.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import QueryDict
from django.test import Client

from relatch.accounts.models import User
from relatch.audit.models import EventKind, SecurityEvent
from relatch.index.manage.services import remove_member
from relatch.index.models import APIToken, File, Project, Release, Role, UsedFilename
from relatch.index.tokens.services import REVOKED, revoke_token
from relatch.index.upload import services, storage
from tests.index.dists import Dist, build_wheel
from tests.index.test_upload import post, refused_with, stored, token_for

pytestmark = pytest.mark.django_db(transaction=True)

NOT_ALLOWED = "You are not allowed to upload to project 'sample-pkg'"


def during_upload(monkeypatch: pytest.MonkeyPatch, change: Callable[[], object]) -> list[int]:
    """Run ``change`` once, while the next upload's file is checked (its digests computed);
    the list it returns records that it ran."""
    compute = storage.compute_digests
    ran: list[int] = []

    def hooked(upload: Any) -> storage.Digests:
        if not ran:
            ran.append(1)
            change()
        return compute(upload)

    monkeypatch.setattr(storage, "compute_digests", hooked)
    return ran


def nothing_published(files_dir: Path) -> None:
    assert not File.objects.exists()
    assert not UsedFilename.objects.exists()
    assert stored(files_dir) == []
    assert not SecurityEvent.objects.filter(kind=EventKind.FILE_UPLOADED).exists()


@pytest.fixture
def project(user: User, make_user: Any) -> Project:
    """sample-pkg, owned by alice (who may manage it: she has a second factor), with bob as a
    maintainer."""
    project = Project.objects.create(name="sample-pkg", normalized_name="sample-pkg")
    Role.objects.create(project=project, user=user, kind=Role.Kind.OWNER)
    bob = make_user(username="bob")
    Role.objects.create(project=project, user=bob, kind=Role.Kind.MAINTAINER)
    token_for(user)  # gives alice her second factor
    return project


def test_a_token_revoked_during_the_upload_publishes_nothing(
    client: Client, user: User, files_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = token_for(user)
    row = APIToken.objects.get(user=user)
    ran = during_upload(monkeypatch, lambda: revoke_token(request=None, user=user,
                                                         token_id=row.pk))
    response = post(client, build_wheel(), token)
    assert ran
    refused_with(response, 403, REVOKED)
    nothing_published(files_dir)
    assert not Project.objects.exists()
    assert not Release.objects.exists()
    assert SecurityEvent.objects.filter(kind=EventKind.API_TOKEN_REVOKED).count() == 1


def test_a_role_removed_during_the_upload_publishes_nothing(
    client: Client, user: User, project: Project, files_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bob = User.objects.get(username="bob")
    token = token_for(bob)
    role = Role.objects.get(user=bob)
    ran = during_upload(monkeypatch, lambda: remove_member(request=None, owner=user,
                                                           project=project, role_id=role.pk))
    response = post(client, build_wheel(), token)
    assert ran
    refused_with(response, 403, NOT_ALLOWED)
    nothing_published(files_dir)
    assert not Release.objects.exists()
    assert SecurityEvent.objects.filter(kind=EventKind.ROLE_REMOVED, user=bob).exists()


def test_a_new_project_made_by_someone_else_during_the_upload_is_not_joined(
    client: Client, user: User, make_user: Any, files_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """bob uploads the first file of a new project; while it is checked, alice's upload makes
    that project. bob's upload must not land in alice's project (it found no project when it
    was checked, and finds hers when it publishes)."""
    bob = make_user(username="bob")
    bob_token = token_for(bob)
    token_for(user)
    alice_wheel = build_wheel(version="1.0")
    ran = during_upload(monkeypatch, lambda: publish_as(user, alice_wheel))
    response = post(client, build_wheel(version="2.0"), bob_token)
    assert ran
    refused_with(response, 403, NOT_ALLOWED)
    assert list(File.objects.values_list("filename", flat=True)) == [alice_wheel.filename]
    assert list(Release.objects.values_list("version", flat=True)) == ["1.0"]
    assert list(Role.objects.values_list("user__username", flat=True)) == ["alice"]
    assert not SecurityEvent.objects.filter(kind=EventKind.FILE_UPLOADED, user=bob).exists()


def publish_as(user: User, dist: Dist) -> File:
    """``dist`` uploaded with ``user``'s token through the upload service (committed)."""
    token = APIToken.objects.get(user=user)
    fields = QueryDict(mutable=True)
    for key, value in {**dist.fields, "sha256_digest": dist.sha256}.items():
        fields.setlist(key, value if isinstance(value, list) else [value])
    upload = SimpleUploadedFile(dist.filename, dist.content)
    return services.store_upload(request=None, token=token, fields=fields, upload=upload).file
