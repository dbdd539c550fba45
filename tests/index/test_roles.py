"""Roles on a project (issue 4, point 1): owners invite by username, the invitee accepts or
declines before the invitation expires, owners change and remove roles, members leave, and the
last owner can never go. Every change is an event on both accounts and a mail to the people
concerned (NIST N9: notices to every verified address)."""

from datetime import UTC, timedelta
from typing import Any

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from relatch.accounts.models import User
from relatch.audit.models import EventKind, SecurityEvent
from relatch.index.models import Project, Role, RoleInvitation
from tests.conftest import CommittingClient, sign_in
from tests.index.project_rows import make_project
from tests.mfa.factor_rows import add_app

pytestmark = pytest.mark.django_db


def kinds(user: User) -> list[str]:
    """The user's events about projects (newest first)."""
    rows = SecurityEvent.objects.filter(user=user).exclude(kind=EventKind.ACCOUNT_CREATED)
    return list(rows.values_list("kind", flat=True))


def subjects(mail: Any, address: str) -> list[str]:
    return [str(m["Subject"]) for m in mail.to(address)]


def url(name: str, project: Project, *args: int) -> str:
    return reverse(f"manage:{name}", args=[project.normalized_name, *args])


@pytest.fixture
def project(alice: User) -> Project:
    return make_project("Demo_Project", owners=(alice,))


@pytest.fixture
def as_bob(make_client: Any, bob: User) -> CommittingClient:
    return sign_in(make_client(), bob)


def invite(client: CommittingClient, project: Project, username: str, kind: str = "maintainer"
           ) -> Any:
    return client.post(url("invite", project), {"username": username, "kind": kind})


def invitation_of(user: User, project: Project, **fields: Any) -> RoleInvitation:
    inviter = project.roles.get(kind=Role.Kind.OWNER).user
    return RoleInvitation.objects.create(
        project=project, invitee=user, inviter=inviter, kind=fields.pop("kind", "maintainer"),
        expires_at=fields.pop("expires_at", timezone.now() + timedelta(days=7)), **fields,
    )


@pytest.mark.parametrize("kind", ["owner", "maintainer"])
def test_owner_invites_and_both_accounts_record_it(
    as_alice: CommittingClient, alice: User, bob: User, project: Project, mail: Any, kind: str,
    settings: Any,
) -> None:
    response = invite(as_alice, project, "BOB", kind)
    assert response.status_code == 302
    invitation = RoleInvitation.objects.get(invitee=bob)
    assert (invitation.state, invitation.kind, invitation.inviter) == ("pending", kind, alice)
    expected = timezone.now() + timedelta(days=settings.ROLE_INVITATION_DAYS)
    assert abs((invitation.expires_at - expected).total_seconds()) < 60
    assert kinds(bob) == [EventKind.ROLE_INVITED]
    assert kinds(alice) == [EventKind.ROLE_INVITATION_SENT]
    text = mail.text(mail.last("bob@example.org"))
    assert "alice invited" in text and "Demo_Project" in text and kind in text
    assert "/manage/invitations/" in text
    assert not Role.objects.filter(user=bob).exists()  # nothing until bob accepts


@pytest.mark.parametrize(("username", "kind", "message"), [
    ("nobody", "maintainer", "No account named “nobody” can be invited"),
    ("carol", "maintainer", "No account named “carol” can be invited"),  # unverified address
    ("", "maintainer", "Enter the username of the person to invite."),
    ("x" * 51, "maintainer", "at most 50 characters"),
    ("bob", "admin", "Select a valid choice"),
    ("alice", "maintainer", "alice is already a member of Demo_Project."),
])
def test_bad_invitations_are_refused_and_change_nothing(
    as_alice: CommittingClient, alice: User, bob: User, project: Project, mail: Any,
    make_user: Any, username: str, kind: str, message: str,
) -> None:
    make_user(username="carol", verified=False)
    response = invite(as_alice, project, username, kind)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not RoleInvitation.objects.exists()
    assert kinds(alice) == [] and mail.messages == []


def test_a_second_invitation_to_the_same_person_is_refused(
    as_alice: CommittingClient, bob: User, project: Project, mail: Any
) -> None:
    invite(as_alice, project, "bob")
    response = invite(as_alice, project, "bob", "owner")  # the form sent twice
    assert response.status_code == 400
    assert "bob already has a pending invitation to Demo_Project." in response.content.decode()
    assert RoleInvitation.objects.filter(invitee=bob).count() == 1
    assert len(mail.to("bob@example.org")) == 1


def test_the_database_holds_one_pending_invitation_per_person(
    bob: User, project: Project
) -> None:
    invitation_of(bob, project)
    with pytest.raises(IntegrityError), transaction.atomic():
        invitation_of(bob, project)
    invitation_of(bob, project, state="declined")  # answered ones do not count


def test_an_expired_invitation_does_not_block_a_new_one(
    as_alice: CommittingClient, bob: User, project: Project
) -> None:
    old = invitation_of(bob, project, expires_at=timezone.now() - timedelta(seconds=1))
    assert invite(as_alice, project, "bob").status_code == 302
    old.refresh_from_db()
    assert old.state == "revoked"
    assert RoleInvitation.objects.filter(invitee=bob, state="pending").count() == 1


def test_inviting_needs_a_fresh_password(
    client: CommittingClient, alice: User, bob: User, project: Project
) -> None:
    """ASVS 7.5.1: a stolen session cannot hand the project to someone else."""
    sign_in(client, alice, reauthenticated=False)
    response = invite(client, project, "bob")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("signin:reauthenticate"))
    assert not RoleInvitation.objects.exists()


def test_invitee_accepts_and_owners_are_told(
    as_bob: CommittingClient, alice: User, bob: User, project: Project, mail: Any
) -> None:
    invitation = invitation_of(bob, project, kind="owner")
    page = as_bob.get(reverse("manage:invitations"))
    assert "Demo_Project" in page.content.decode()
    response = as_bob.post(reverse("manage:accept_invitation", args=[invitation.pk]))
    assert response.status_code == 302
    assert Role.objects.get(project=project, user=bob).kind == "owner"
    invitation.refresh_from_db()
    assert invitation.state == "accepted" and invitation.answered_at is not None
    assert kinds(bob) == [EventKind.ROLE_INVITATION_ACCEPTED]
    assert kinds(alice) == [EventKind.ROLE_INVITATION_ACCEPTED]
    assert "bob is now owner of Demo_Project" in subjects(mail, "alice@example.org")


def test_accepting_twice_gives_one_role(
    as_bob: CommittingClient, bob: User, project: Project
) -> None:
    invitation = invitation_of(bob, project)
    as_bob.post(reverse("manage:accept_invitation", args=[invitation.pk]))
    response = as_bob.post(reverse("manage:accept_invitation", args=[invitation.pk]))
    assert response.status_code == 400
    assert "This invitation was already accepted." in response.content.decode()
    assert Role.objects.filter(user=bob).count() == 1
    assert kinds(bob) == [EventKind.ROLE_INVITATION_ACCEPTED]


def test_an_expired_invitation_is_refused_clearly(
    as_bob: CommittingClient, bob: User, project: Project, mail: Any
) -> None:
    expired_at = timezone.now() - timedelta(days=3, seconds=30)
    invitation = invitation_of(bob, project, expires_at=expired_at)
    assert "Expired" in as_bob.get(reverse("manage:invitations")).content.decode()
    response = as_bob.post(reverse("manage:accept_invitation", args=[invitation.pk]))
    assert response.status_code == 400
    # The time as every page shows it (issue 19): in words, the exact UTC moment on hover.
    at = expired_at.astimezone(UTC)
    assert (f"This invitation to Demo_Project expired <time datetime=\"{at.isoformat()}\" "
            f'title="{at:%Y-%m-%d %H:%M:%S} UTC">3 days ago</time>. '
            "Ask an owner to invite you again.") in response.content.decode()
    assert not Role.objects.filter(user=bob).exists()
    invitation.refresh_from_db()
    assert invitation.state == "pending" and kinds(bob) == [] and mail.messages == []


def test_invitee_declines_and_the_inviter_is_told(
    as_bob: CommittingClient, alice: User, bob: User, project: Project, mail: Any
) -> None:
    invitation = invitation_of(bob, project)
    response = as_bob.post(reverse("manage:decline_invitation", args=[invitation.pk]))
    assert response.status_code == 302
    invitation.refresh_from_db()
    assert invitation.state == "declined"
    assert not Role.objects.filter(user=bob).exists()
    assert kinds(bob) == [EventKind.ROLE_INVITATION_DECLINED]
    assert kinds(alice) == [EventKind.ROLE_INVITATION_DECLINED]
    assert "bob declined to join Demo_Project" in subjects(mail, "alice@example.org")


def test_nobody_answers_someone_elses_invitation(
    make_user: Any, bob: User, project: Project
) -> None:
    invitation = invitation_of(bob, project)
    mallory = make_user(username="mallory")
    add_app(mallory)
    client = sign_in(CommittingClient(), mallory)
    response = client.post(reverse("manage:accept_invitation", args=[invitation.pk]))
    assert response.status_code == 404
    assert not Role.objects.filter(user__in=[bob, mallory]).exists()
    invitation.refresh_from_db()
    assert invitation.state == "pending"


def test_owner_revokes_and_the_invitation_no_longer_works(
    as_alice: CommittingClient, as_bob: CommittingClient, alice: User, bob: User,
    project: Project, mail: Any,
) -> None:
    invitation = invitation_of(bob, project)
    response = as_alice.post(url("revoke_invitation", project, invitation.pk))
    assert response.status_code == 302
    invitation.refresh_from_db()
    assert invitation.state == "revoked"
    assert kinds(bob) == [EventKind.ROLE_INVITATION_REVOKED]
    assert kinds(alice) == [EventKind.ROLE_INVITATION_REVOKED]
    assert "Your invitation to Demo_Project was withdrawn" in subjects(mail, "bob@example.org")
    refused = as_bob.post(reverse("manage:accept_invitation", args=[invitation.pk]))
    assert refused.status_code == 400 and "already revoked" in refused.content.decode()
    assert not Role.objects.filter(user=bob).exists()


@pytest.mark.parametrize("kind", ["owner", "maintainer"])
def test_owner_changes_a_role(
    as_alice: CommittingClient, alice: User, bob: User, project: Project, mail: Any, kind: str
) -> None:
    other = "maintainer" if kind == "owner" else "owner"
    role = Role.objects.create(project=project, user=bob, kind=other)
    response = as_alice.post(url("change_role", project, role.pk), {"kind": kind})
    assert response.status_code == 302
    role.refresh_from_db()
    assert role.kind == kind
    assert kinds(bob) == [EventKind.ROLE_CHANGED] and kinds(alice) == [EventKind.ROLE_CHANGED]
    assert f"bob is now {kind} of Demo_Project" in subjects(mail, "bob@example.org")
    assert f"bob is now {kind} of Demo_Project" in subjects(mail, "alice@example.org")


def test_owner_removes_a_member(
    as_alice: CommittingClient, alice: User, bob: User, project: Project, mail: Any
) -> None:
    role = Role.objects.create(project=project, user=bob, kind="maintainer")
    response = as_alice.post(url("remove_member", project, role.pk))
    assert response.status_code == 302
    assert not Role.objects.filter(user=bob).exists()
    assert kinds(bob) == [EventKind.ROLE_REMOVED] and kinds(alice) == [EventKind.ROLE_REMOVED]
    text = mail.text(mail.last("bob@example.org"))
    assert "alice removed bob (maintainer) from the project Demo_Project" in text
    assert mail.to("alice@example.org")


@pytest.mark.parametrize("kind", ["owner", "maintainer"])
def test_a_member_leaves_and_the_owners_are_told(
    as_bob: CommittingClient, alice: User, bob: User, project: Project, mail: Any, kind: str
) -> None:
    Role.objects.create(project=project, user=bob, kind=kind)
    response = as_bob.post(url("leave", project))
    assert response.status_code == 302 and response["Location"] == reverse("manage:projects")
    assert not Role.objects.filter(user=bob).exists()
    assert kinds(bob) == [EventKind.ROLE_REMOVED]
    assert "bob left the project Demo_Project" in mail.text(mail.last("alice@example.org"))


@pytest.mark.parametrize(("action", "data"), [
    ("leave", None),
    ("remove_member", None),
    ("change_role", {"kind": "maintainer"}),
])
def test_the_last_owner_cannot_go(
    as_alice: CommittingClient, alice: User, bob: User, project: Project, mail: Any,
    action: str, data: dict[str, str] | None,
) -> None:
    Role.objects.create(project=project, user=bob, kind="maintainer")
    own = project.roles.get(user=alice)
    target = url(action, project) if action == "leave" else url(action, project, own.pk)
    response = as_alice.post(target, data or {})
    assert response.status_code == 400
    assert "A project needs at least one owner: alice is its last owner." in (
        response.content.decode())
    assert project.roles.get(user=alice).kind == "owner"
    assert kinds(alice) == [] and mail.messages == []


@pytest.mark.parametrize(("who", "bob_kind", "offered"), [
    ("alice", "maintainer", False),  # alice is the last owner
    ("alice", "owner", True),
    ("bob", "maintainer", True),
    ("bob", "owner", True),
])
def test_leave_is_offered_to_everyone_but_the_last_owner(
    request: Any, bob: User, project: Project, who: str, bob_kind: str, offered: bool,
) -> None:
    """The page does not offer what the service refuses (test_the_last_owner_cannot_go): it
    says what to do instead."""
    Role.objects.create(project=project, user=bob, kind=bob_kind)
    html = request.getfixturevalue(f"as_{who}").get(url("project", project)).content.decode()
    assert (url("leave", project) in html) is offered
    assert ("You are the last owner of Demo_Project, so you cannot leave it" in html) is (
        not offered)
    if not offered:
        assert "make another member an owner" in html


def test_with_two_owners_one_may_step_down(
    as_alice: CommittingClient, alice: User, bob: User, project: Project
) -> None:
    Role.objects.create(project=project, user=bob, kind="owner")
    own = project.roles.get(user=alice)
    assert as_alice.post(url("change_role", project, own.pk), {"kind": "maintainer"}).status_code \
        == 302
    assert project.roles.get(user=alice).kind == "maintainer"


@pytest.mark.parametrize(("action", "data"), [
    ("invite", {"username": "carol", "kind": "owner"}),
    ("change_role", {"kind": "owner"}),
    ("remove_member", {}),
    ("revoke_invitation", {}),
])
def test_maintainers_cannot_do_owner_actions(
    as_bob: CommittingClient, alice: User, bob: User, project: Project, make_user: Any,
    mail: Any, action: str, data: dict[str, str],
) -> None:
    carol = make_user(username="carol")
    role = Role.objects.create(project=project, user=bob, kind="maintainer")
    invitation = invitation_of(carol, project)
    arg = {"change_role": role.pk, "remove_member": project.roles.get(user=alice).pk,
           "revoke_invitation": invitation.pk}.get(action)
    response = as_bob.post(url(action, project, *([arg] if arg else [])), data)
    assert response.status_code == 403
    assert "Only owners of Demo_Project can" in response.content.decode()
    assert sorted(project.roles.values_list("user__username", "kind")) == [
        ("alice", "owner"), ("bob", "maintainer")]
    invitation.refresh_from_db()
    assert invitation.state == "pending"
    assert RoleInvitation.objects.count() == 1
    assert kinds(bob) == [] and mail.messages == []


def test_an_action_url_opened_by_get_changes_nothing(
    as_alice: CommittingClient, bob: User, project: Project
) -> None:
    role = Role.objects.create(project=project, user=bob, kind="maintainer")
    response = as_alice.get(url("remove_member", project, role.pk))
    assert response.status_code == 302 and response["Location"] == url("project", project)
    assert Role.objects.filter(pk=role.pk).exists()
