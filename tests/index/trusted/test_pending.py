"""Pending publishers: the first exchange creates the project; a name taken meanwhile drops
the pending publisher instead of publishing into someone else's project."""

from typing import Any

from django.test import Client

from relatch.accounts.models import User
from relatch.audit.models import EventKind, Factor, SecurityEvent
from relatch.index.models import APIToken, File, Project, Role
from relatch.index.trusted.models import TrustedPublisher
from relatch.index.upstream.reserve import reserve_name
from tests.conftest import Mailbox
from tests.index.dists import build_wheel
from tests.index.project_rows import make_project
from tests.index.test_upload import post as upload
from tests.index.test_upload import token_for
from tests.index.trusted.conftest import AUDIENCE, make_publisher
from tests.index.trusted.exchanging import mint, minted_text, no_token_minted, refused
from tests.mfa.factor_rows import add_app
from tests.oidc_issuer import FakeIssuer


def _token(issuer: FakeIssuer, workflow: str = "release.yml") -> str:
    return issuer.sign(issuer.github_claims(repository="acme/new-tool", workflow=workflow,
                                            audience=AUDIENCE))


def test_the_first_exchange_creates_the_project_and_drops_the_other_pending_ones(
    client: Client, oidc_settings: Any, github_issuer: FakeIssuer, ci_owner: User,
    make_user: Any, mail: Mailbox
) -> None:
    mine = make_publisher(issuer=github_issuer, added_by=ci_owner, pending_name="New-Tool",
                          repository="acme/new-tool")
    dave = make_user(username="dave", email="dave@example.org")
    theirs = make_publisher(issuer=github_issuer, added_by=dave, pending_name="new_tool",
                            repository="dave/new-tool")
    mail.clear()

    text = minted_text(mint(client, _token(github_issuer)))

    project = Project.objects.get(normalized_name="new-tool")
    assert project.name == "New-Tool"
    assert Role.objects.get(project=project).user == ci_owner
    mine.refresh_from_db()
    assert (mine.project, mine.pending_name, mine.pending_normalized_name) == (project, "", "")
    assert APIToken.objects.get(publisher=mine).project == project
    created = SecurityEvent.objects.get(user=ci_owner, kind=EventKind.PROJECT_CREATED)
    assert created.factor == Factor.TRUSTED_PUBLISHER
    assert created.details["publisher"]["repository"] == "acme/new-tool"

    theirs.refresh_from_db()
    assert theirs.removed_at is not None
    dropped = SecurityEvent.objects.get(user=dave, kind=EventKind.PENDING_PUBLISHER_INVALIDATED)
    assert dropped.details["name"] == "new_tool"
    told = mail.last("dave@example.org")
    assert "new_tool" in str(told["Subject"])
    assert "Another pending publisher's first upload created the project New-Tool" in (
        mail.text(told))
    assert mail.to("carol@example.org") == []

    answer = upload(client, build_wheel("new-tool", "1.0"), text)
    assert answer.status_code == 200, answer.content
    assert File.objects.filter(release__project=project).count() == 1
    # Its next exchange is an ordinary publisher's.
    minted_text(mint(client, _token(github_issuer)))
    assert Project.objects.filter(normalized_name="new-tool").count() == 1


def test_a_pending_publisher_whose_name_was_taken_is_dropped_and_refused(
    client: Client, oidc_settings: Any, github_issuer: FakeIssuer, ci_owner: User,
    make_user: Any, mail: Mailbox
) -> None:
    pending = make_publisher(issuer=github_issuer, added_by=ci_owner, pending_name="new-tool",
                             repository="acme/new-tool")
    squatter = make_user(username="erin", email="erin@example.org")
    make_project("New.Tool", owners=(squatter,))
    mail.clear()

    refused(mint(client, _token(github_issuer)), "invalid-pending-publisher",
            "'new-tool'", "was taken before its first upload")

    no_token_minted()
    pending.refresh_from_db()
    assert pending.removed_at is not None and pending.project is None
    assert SecurityEvent.objects.filter(user=ci_owner,
                                        kind=EventKind.PENDING_PUBLISHER_INVALIDATED).count() == 1
    assert "was created here before your pending publisher's first upload" in mail.text(
        mail.last("carol@example.org"))
    # The squatter's project got no publisher, no role for carol, no token.
    assert not Role.objects.filter(user=ci_owner).exists()
    assert not TrustedPublisher.objects.filter(project__isnull=False).exists()
    # And the token is refused the same way again (the publisher is gone).
    refused(mint(client, _token(github_issuer)), "invalid-publisher", "No trusted publisher")


def test_a_pending_publisher_of_a_frozen_account_creates_nothing(
    client: Client, oidc_settings: Any, github_issuer: FakeIssuer, ci_owner: User
) -> None:
    make_publisher(issuer=github_issuer, added_by=ci_owner, pending_name="new-tool",
                   repository="acme/new-tool")
    User.objects.filter(pk=ci_owner.pk).update(is_frozen=True)
    refused(mint(client, _token(github_issuer)), "invalid-publisher", "cannot publish now")
    assert not Project.objects.filter(normalized_name="new-tool").exists()


def test_an_upload_creating_the_name_drops_pending_publishers_at_once(
    client: Client, oidc_settings: Any, github_issuer: FakeIssuer, ci_owner: User,
    make_user: Any, mail: Mailbox
) -> None:
    """Someone else uploads the name first: the pending publisher's owner learns it now, not at
    their release's first run, and the publisher never reaches the uploader's project."""
    pending = make_publisher(issuer=github_issuer, added_by=ci_owner, pending_name="new-tool",
                             repository="acme/new-tool")
    erin = make_user(username="erin", email="erin@example.org")
    add_app(erin)
    mail.clear()

    assert upload(client, build_wheel("new-tool", "1.0"), token_for(erin)).status_code == 200

    pending.refresh_from_db()
    assert pending.removed_at is not None and pending.project is None
    dropped = SecurityEvent.objects.get(user=ci_owner,
                                        kind=EventKind.PENDING_PUBLISHER_INVALIDATED)
    assert "was created here (by an upload or a reserved name)" in dropped.details["reason"]
    assert "can no longer create it" in mail.text(mail.last("carol@example.org"))
    refused(mint(client, _token(github_issuer)), "invalid-publisher", "No trusted publisher")
    assert not Role.objects.filter(user=ci_owner).exists()


def test_reserving_the_name_drops_pending_publishers_too(
    oidc_settings: Any, github_issuer: FakeIssuer, ci_owner: User, make_user: Any
) -> None:
    pending = make_publisher(issuer=github_issuer, added_by=ci_owner, pending_name="new-tool",
                             repository="acme/new-tool")
    reserve_name(name="new-tool", owner=make_user(username="erin", email="erin@example.org"))
    pending.refresh_from_db()
    assert pending.removed_at is not None
