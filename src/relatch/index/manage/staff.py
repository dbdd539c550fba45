"""Role changes that staff undo while completing a recovery (relatch.recovery.completion).

Someone who held the account may have used its ownership: removed the other owners, made
accomplices owners, invited people. These put one such change back, each checked against the
rows as they are now (nothing is undone twice) and recorded on every account it concerns.
"""

from relatch.accounts.models import User
from relatch.audit.models import EventKind
from relatch.audit.services import record_event
from relatch.index.models import Project, Role, RoleInvitation


def _project(name: str) -> Project | None:
    return Project.objects.filter(name=name).first()


def _record(users: list[User], kind: EventKind, details: dict[str, str]) -> None:
    for user in dict.fromkeys(users):
        record_event(user=user, kind=kind, details=details)


def restore_role(*, project_name: str, username: str, kind: str, staff: User) -> bool:
    """Give ``username`` back the role ``kind`` on the project; False when not possible."""
    project = _project(project_name)
    member = User.objects.filter(username__iexact=username).first()
    if project is None or member is None or Role.objects.filter(project=project,
                                                                 user=member).exists():
        return False
    Role.objects.create(project=project, user=member, kind=kind)
    _record([member], EventKind.ROLE_CHANGED,
            {"project": project.name, "member": member.username, "old_role": "",
             "new_role": kind, "changed_by": f"staff: {staff.username}"})
    return True


def set_role_back(*, project_name: str, username: str, from_kind: str, to_kind: str,
                  staff: User) -> bool:
    """Set ``username``'s role back from ``from_kind`` to ``to_kind``; False when it is no
    longer ``from_kind``."""
    project = _project(project_name)
    role = Role.objects.filter(project=project, user__username__iexact=username,
                               kind=from_kind).select_related("user").first()
    if project is None or role is None:
        return False
    role.kind = to_kind
    role.save(update_fields=["kind"])
    _record([role.user], EventKind.ROLE_CHANGED,
            {"project": project.name, "member": role.user.username, "old_role": from_kind,
             "new_role": to_kind, "changed_by": f"staff: {staff.username}"})
    return True


def withdraw_invitation(*, project_name: str, inviter: User, username: str, staff: User) -> bool:
    """Undo an invitation ``inviter`` sent: revoke it if pending, remove the role it gave if
    it was accepted (unless it made the last owner). False when there is nothing to undo."""
    project = _project(project_name)
    invitation = RoleInvitation.objects.filter(
        project=project, inviter=inviter, invitee__username__iexact=username,
    ).select_related("invitee").order_by("-created_at").first()
    if project is None or invitation is None:
        return False
    if invitation.state == RoleInvitation.State.PENDING:
        invitation.state = RoleInvitation.State.REVOKED
        invitation.save(update_fields=["state"])
    elif invitation.state != RoleInvitation.State.ACCEPTED or not _remove_role(
            project, invitation.invitee):
        return False
    _record([invitation.invitee], EventKind.ROLE_INVITATION_REVOKED,
            {"project": project.name, "invitee": invitation.invitee.username,
             "inviter": inviter.username, "revoked_by": f"staff: {staff.username}"})
    return True


def _remove_role(project: Project, member: User) -> bool:
    role = Role.objects.filter(project=project, user=member).first()
    owners = Role.objects.filter(project=project, kind=Role.Kind.OWNER).count()
    if role is None or (role.kind == Role.Kind.OWNER and owners <= 1):
        return False
    role.delete()
    return True
