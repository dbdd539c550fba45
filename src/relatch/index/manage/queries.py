"""What the management pages show. Read-only."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, OuterRef, Subquery
from django.utils import timezone

from relatch.accounts.models import User
from relatch.index.models import Project, Release, Role, RoleInvitation


@dataclass(frozen=True)
class ProjectRow:
    project: Project
    role: str
    latest_version: str | None


def projects_of(*, user: User) -> list[ProjectRow]:
    """The user's projects with their role and newest release, by name."""
    latest = Release.objects.filter(project=OuterRef("project")).order_by("-created_at", "-pk")
    roles = (
        Role.objects.filter(user=user)
        .select_related("project")
        .annotate(latest_version=Subquery(latest.values("version")[:1]))
        .order_by("project__normalized_name")
    )
    return [
        ProjectRow(project=r.project, role=r.get_kind_display(), latest_version=r.latest_version)
        for r in roles
    ]


def members_of(*, project: Project) -> list[Role]:
    """Roles of the project, owners first."""
    return list(project.roles.select_related("user").order_by("-kind", "user__username"))


def pending_invitations_to(*, project: Project) -> list[RoleInvitation]:
    return list(
        project.invitations.filter(state=RoleInvitation.State.PENDING)
        .select_related("invitee", "inviter").order_by("created_at")
    )


def releases_of(*, project: Project) -> list[Release]:
    """Releases newest first, with how many files each has."""
    return list(project.releases.annotate(file_count=Count("files")).order_by("-created_at"))


@dataclass(frozen=True)
class InvitationRow:
    invitation: RoleInvitation
    expired: bool


def invitations_for(*, user: User, now: datetime | None = None) -> list[InvitationRow]:
    """The user's pending invitations, expired ones marked (they can only be declined)."""
    now = now or timezone.now()
    rows = (
        RoleInvitation.objects.filter(invitee=user, state=RoleInvitation.State.PENDING)
        .select_related("project", "inviter").order_by("-created_at")
    )
    return [InvitationRow(invitation=i, expired=i.expires_at <= now) for i in rows]
