"""Who may act on a project, and the owners' actions on roles and invitations.

Every change locks the project row first, so two requests cannot both pass a check only one
may pass (the last owner leaving while the other owner is removed; a form sent twice). Each
change is a SecurityEvent on every account it concerns and a mail to the people concerned.
Release actions (yank, un-yank, delete) are in ``releases``.
"""

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from relatch.accounts import ratelimit
from relatch.accounts.freeze import AccountFrozenError, refuse_if_frozen
from relatch.accounts.models import User
from relatch.accounts.notices import verified_addresses
from relatch.audit.models import EventKind
from relatch.audit.services import record_event
from relatch.index.models import Project, Role, RoleInvitation
from relatch.mfa.policy import has_second_factor
from relatch.notify.services import send_mail
from relatch.web.next_url import with_next
from relatch.web.path_prefix import site_path
from relatch.web.refusals import Refusal
from relatch.web.templatetags.times import relative_time

# Each invitation mails another person: a stolen session must not become a mail cannon.
INVITE_LIMIT = "20/hour"
LAST_OWNER = (
    "A project needs at least one owner: {username} is its last owner. Make another member an "
    "owner first."
)


class ManageError(Refusal):
    """A refused change; ``message`` says why, plainly. Nothing was changed."""


def require_not_frozen(*, user: User, action: str) -> None:
    """ManageError (403) when the acting account is frozen (relatch.accounts.freeze): a
    hijacker holding its session must not hand a project to someone, take a role, or change
    what was published while staff review the account (DESIGN §5)."""
    try:
        refuse_if_frozen(user=user, action=action)
    except AccountFrozenError as frozen:
        raise ManageError(frozen.message, status=403) from frozen


def role_of(*, user: User, project: Project) -> Role | None:
    """The user's role on the project, or None for a non-member."""
    return Role.objects.filter(project=project, user=user).first()


def lock_project(project: Project) -> Project:
    """Serialise changes to one project's roles and releases (see the module docstring)."""
    return Project.objects.select_for_update().get(pk=project.pk)


def require_owner(*, user: User, project: Project, action: str) -> Role:
    """The user's owner role, or ManageError (403) naming the action they may not take."""
    role = role_of(user=user, project=project)
    if role is None or role.kind != Role.Kind.OWNER:
        raise ManageError(f"Only owners of {project.name} can {action}.", status=403)
    return role


def owners_of(project: Project) -> list[User]:
    return [r.user for r in project.roles.filter(kind=Role.Kind.OWNER).select_related("user")]


def tell(
    *, users: Iterable[User], template: str, actor: User | None, context: dict[str, Any]
) -> None:
    """Mail each user's verified addresses; the actor's own copy carries the "this wasn't me"
    footer, since a change they did not make means someone else holds their session."""
    for user in dict.fromkeys(users):
        send_mail(
            to=verified_addresses(user),
            template=template,
            context={
                "username": user.username,
                "actor": actor.username if actor else "",
                "security_notice": user == actor,
                **context,
            },
        )


def _record_both(
    *, request: HttpRequest | None, users: Iterable[User], kind: EventKind, details: dict[str, Any]
) -> None:
    for user in dict.fromkeys(users):
        record_event(user=user, kind=kind, request=request, details=details)


def _invitable(username: str) -> User:
    # One message for unknown, inactive and unverified accounts: usernames are public, but
    # whether an account has a verified address is not.
    user = User.objects.filter(username__iexact=username.strip(), is_active=True).first()
    if user is None or not verified_addresses(user):
        raise ManageError(
            f"No account named “{username.strip()}” can be invited. Check the spelling; the "
            "account must have a verified email address."
        )
    return user


def _clear_expired_invitation(project: Project, invitee: User) -> None:
    """An expired invitation no longer blocks a new one (one pending per person)."""
    RoleInvitation.objects.filter(
        project=project, invitee=invitee, state=RoleInvitation.State.PENDING,
        expires_at__lte=timezone.now(),
    ).update(state=RoleInvitation.State.REVOKED, answered_at=timezone.now())


@transaction.atomic
def invite(
    *, request: HttpRequest | None, inviter: User, project: Project, username: str, kind: str
) -> RoleInvitation:
    """Invite an account to a role; it accepts or declines on its invitations page."""
    require_not_frozen(user=inviter, action="Inviting people to a project")
    project = lock_project(project)
    require_owner(user=inviter, project=project, action="invite people")
    if kind not in Role.Kind.values:
        raise ManageError("Choose the role: owner or maintainer.")
    invitee = _invitable(username)
    if role_of(user=invitee, project=project) is not None:
        raise ManageError(f"{invitee.username} is already a member of {project.name}.")
    _clear_expired_invitation(project, invitee)
    if project.invitations.filter(invitee=invitee, state=RoleInvitation.State.PENDING).exists():
        raise ManageError(f"{invitee.username} already has a pending invitation to {project.name}.")
    if not ratelimit.hit(scope="role-invite", key=str(inviter.pk), limit=INVITE_LIMIT):
        raise ManageError("You sent too many invitations in the last hour. Try later.", 429)
    try:
        with transaction.atomic():
            invitation = RoleInvitation.objects.create(
                project=project, invitee=invitee, inviter=inviter, kind=kind,
                expires_at=timezone.now() + timedelta(days=settings.ROLE_INVITATION_DAYS),
            )
    except IntegrityError as exc:  # the same form sent twice at once
        raise ManageError(f"{invitee.username} already has a pending invitation.") from exc
    details = _invitation_details(invitation)
    record_event(user=invitee, kind=EventKind.ROLE_INVITED, request=request, details=details)
    record_event(
        user=inviter, kind=EventKind.ROLE_INVITATION_SENT, request=request, details=details
    )
    tell(users=[invitee], template="role_invited", actor=inviter, context={
        **details, "days": settings.ROLE_INVITATION_DAYS, **_what_accepting_needs(invitee),
    })
    return invitation


def _what_accepting_needs(invitee: User) -> dict[str, Any]:
    """Every member manages the project, which needs a second factor: an invitee without one
    is told so in the mail, with the set-up page that comes back to the invitations."""
    if has_second_factor(invitee):
        return {"needs_factor": False}
    # The mail puts these after base_url, which ends with the site's path: below the prefix
    # (reverse() adds it in a request). ``next`` is followed from the host's root: with it.
    invitations = site_path(reverse("manage:invitations"))
    return {
        "needs_factor": True,
        "invitations_path": invitations,
        "setup_path": with_next(site_path(reverse("mfa:overview")),
                                settings.BASE_PATH + invitations),
    }


def _invitation_details(invitation: RoleInvitation) -> dict[str, Any]:
    return {
        "project": invitation.project.name,
        "role": invitation.kind,
        "invitee": invitation.invitee.username,
        "inviter": invitation.inviter.username,
    }


def _pending_invitation(*, invitation_id: int, invitee: User) -> RoleInvitation:
    invitation = (
        RoleInvitation.objects.select_related("project", "inviter", "invitee")
        .filter(pk=invitation_id, invitee=invitee).first()
    )
    if invitation is None:
        raise ManageError("There is no such invitation for your account.", status=404)
    lock_project(invitation.project)
    invitation.refresh_from_db(fields=["state"])
    if invitation.state != RoleInvitation.State.PENDING:
        raise ManageError(
            f"This invitation was already {invitation.get_state_display().lower()}."
        )
    return invitation


@transaction.atomic
def accept_invitation(*, request: HttpRequest | None, user: User, invitation_id: int) -> Role:
    """The invitee takes the role; the project's owners are told."""
    require_not_frozen(user=user, action="Accepting an invitation to a project")
    invitation = _pending_invitation(invitation_id=invitation_id, invitee=user)
    if invitation.expires_at <= timezone.now():
        # Shown on the invitations page as the pages show times (a <time>, exact UTC on
        # hover); format_html escapes the project's name.
        raise ManageError(format_html(
            "This invitation to {} expired {}. Ask an owner to invite you again.",
            invitation.project.name, relative_time(invitation.expires_at),
        ))
    if role_of(user=user, project=invitation.project) is not None:
        raise ManageError(f"You are already a member of {invitation.project.name}.")
    owners = owners_of(invitation.project)
    role = Role.objects.create(project=invitation.project, user=user, kind=invitation.kind)
    _answer(invitation, RoleInvitation.State.ACCEPTED)
    details = _invitation_details(invitation)
    _record_both(request=request, users=[user, invitation.inviter],
                 kind=EventKind.ROLE_INVITATION_ACCEPTED, details=details)
    tell(users=[*owners, user], template="role_invitation_accepted", actor=user,
         context=details)
    return role


def _answer(invitation: RoleInvitation, state: RoleInvitation.State) -> None:
    invitation.state = state
    invitation.answered_at = timezone.now()
    invitation.save(update_fields=["state", "answered_at"])


@transaction.atomic
def decline_invitation(
    *, request: HttpRequest | None, user: User, invitation_id: int
) -> RoleInvitation:
    """The invitee says no (expired invitations may be declined too, to tidy the list)."""
    invitation = _pending_invitation(invitation_id=invitation_id, invitee=user)
    _answer(invitation, RoleInvitation.State.DECLINED)
    details = _invitation_details(invitation)
    _record_both(request=request, users=[user, invitation.inviter],
                 kind=EventKind.ROLE_INVITATION_DECLINED, details=details)
    tell(users=[invitation.inviter], template="role_invitation_declined", actor=user,
         context=details)
    return invitation


@transaction.atomic
def revoke_invitation(
    *, request: HttpRequest | None, owner: User, project: Project, invitation_id: int
) -> RoleInvitation:
    """An owner withdraws a pending invitation before it is answered."""
    project = lock_project(project)
    require_owner(user=owner, project=project, action="revoke invitations")
    invitation = (
        project.invitations.select_related("project", "inviter", "invitee")
        .filter(pk=invitation_id).first()
    )
    if invitation is None or invitation.state != RoleInvitation.State.PENDING:
        raise ManageError("That invitation is no longer pending (answered or revoked).")
    _answer(invitation, RoleInvitation.State.REVOKED)
    details = {**_invitation_details(invitation), "revoked_by": owner.username}
    _record_both(request=request, users=[invitation.invitee, owner],
                 kind=EventKind.ROLE_INVITATION_REVOKED, details=details)
    tell(users=[invitation.invitee], template="role_invitation_revoked", actor=owner,
         context=details)
    return invitation


def _member(project: Project, role_id: int) -> Role:
    role = project.roles.select_related("user").filter(pk=role_id).first()
    if role is None:
        raise ManageError(f"That person is no longer a member of {project.name}.", status=404)
    return role


def _refuse_last_owner(project: Project, role: Role) -> None:
    if role.kind == Role.Kind.OWNER and project.roles.filter(kind=Role.Kind.OWNER).count() <= 1:
        raise ManageError(LAST_OWNER.format(username=role.user.username))


@transaction.atomic
def change_role(
    *, request: HttpRequest | None, owner: User, project: Project, role_id: int, kind: str
) -> Role:
    """An owner makes a member an owner or a maintainer; never demotes the last owner."""
    require_not_frozen(user=owner, action="Changing a project role")
    project = lock_project(project)
    require_owner(user=owner, project=project, action="change roles")
    if kind not in Role.Kind.values:
        raise ManageError("Choose the role: owner or maintainer.")
    role = _member(project, role_id)
    if role.kind == kind:
        raise ManageError(f"{role.user.username} is already {role.get_kind_display().lower()}.")
    if kind != Role.Kind.OWNER:
        _refuse_last_owner(project, role)
    details = {"project": project.name, "member": role.user.username, "old_role": role.kind,
               "new_role": kind, "changed_by": owner.username}
    role.kind = kind
    role.save(update_fields=["kind"])
    _record_both(request=request, users=[role.user, owner], kind=EventKind.ROLE_CHANGED,
                 details=details)
    tell(users=[role.user, *owners_of(project)], template="role_changed", actor=owner,
         context=details)
    return role


@transaction.atomic
def remove_member(
    *, request: HttpRequest | None, owner: User, project: Project, role_id: int
) -> Role:
    """An owner removes a member (themselves too, unless they are the last owner)."""
    require_not_frozen(user=owner, action="Removing a project member")
    project = lock_project(project)
    require_owner(user=owner, project=project, action="remove members")
    role = _member(project, role_id)
    return _remove(request=request, actor=owner, project=project, role=role)


@transaction.atomic
def leave_project(*, request: HttpRequest | None, user: User, project: Project) -> Role:
    """A member gives up their role; the last owner cannot."""
    require_not_frozen(user=user, action="Leaving a project")
    project = lock_project(project)
    role = role_of(user=user, project=project)
    if role is None:
        raise ManageError(f"You are not a member of {project.name}.", status=404)
    return _remove(request=request, actor=user, project=project, role=role)


def _remove(*, request: HttpRequest | None, actor: User, project: Project, role: Role) -> Role:
    _refuse_last_owner(project, role)
    owners = owners_of(project)
    role.delete()
    details = {"project": project.name, "member": role.user.username, "role": role.kind,
               "removed_by": actor.username}
    _record_both(request=request, users=[role.user, actor], kind=EventKind.ROLE_REMOVED,
                 details=details)
    tell(users=[role.user, *owners], template="role_removed", actor=actor, context=details)
    return role
