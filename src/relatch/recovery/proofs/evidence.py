"""What staff see beside the proofs, and what a requester may see of the account.

Weak evidence is shown to staff and never counted by the policy (DESIGN §5): release metadata
that names the contact address, and the account's projects and their dates.
"""

from email.utils import getaddresses

from relatch.accounts.models import Email, User
from relatch.index.models import Project, Release, Role
from relatch.index.trusted.describe import describe_publisher
from relatch.recovery.models import RecoveryRequest


def mask_address(address: str) -> str:
    """"alice@example.org" -> "a***@example.org": enough to recognise, not to learn."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


def verified_account_emails(user: User) -> list[Email]:
    """The addresses a mailbox proof may use: verified, and receiving mail (not bounced)."""
    usable = user.emails.filter(verified=True, not_receiving_since__isnull=True)
    return list(usable.order_by("-primary", "created_at"))


def projects_of(user: User) -> list[Project]:
    return list(Project.objects.filter(roles__user=user).distinct().order_by("normalized_name"))


def shared_owned_projects(user: User, other: User) -> list[Project]:
    """Projects that both accounts own (who may vouch as a co-owner)."""
    owned = Role.objects.filter(user=user, kind=Role.Kind.OWNER).values("project")
    return list(Project.objects.filter(pk__in=owned, roles__user=other,
                                       roles__kind=Role.Kind.OWNER).distinct())


def _metadata_addresses(release: Release) -> set[str]:
    fields = [release.author_email, release.maintainer_email]
    return {address.lower() for _, address in getaddresses(fields) if "@" in address}


def _provenance(release: Release, account: User) -> str:
    """Who wrote a release's metadata: anyone who uploads writes what they like into it, and
    through a trusted publisher anyone who can run that CI job does."""
    if release.trusted_publisher is not None:
        return (f"{release.version} (published by a CI job, "
                f"{describe_publisher(release.trusted_publisher)}, NOT by this account's hand)")
    if release.uploader_id == account.pk:
        return f"{release.version} (uploaded by this account)"
    who = release.uploader.username if release.uploader else "no account"
    return f"{release.version} (uploaded by {who}, NOT this account)"


def weak_evidence(recovery: RecoveryRequest) -> list[str]:
    """Lines for staff: metadata naming the contact address, with who uploaded it (issue 15:
    a maintainer's own upload must not read as evidence for them), and the account's
    projects."""
    if recovery.user is None:
        return []
    contact = recovery.contact_email.lower()
    lines: list[str] = []
    for project in projects_of(recovery.user):
        releases = list(project.releases.select_related("uploader", "trusted_publisher")
                        .order_by("created_at"))
        named = [_provenance(r, recovery.user) for r in releases
                 if contact in _metadata_addresses(r)]
        if named:
            lines.append(f"The metadata of {project.name} {', '.join(named)} names the contact "
                         f"address {recovery.contact_email} as author or maintainer.")
        first = releases[0].created_at.date().isoformat() if releases else "no release"
        lines.append(f"Project {project.name}: created {project.created_at.date().isoformat()}, "
                     f"first release {first}, {len(releases)} release(s).")
    return lines
