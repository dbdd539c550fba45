"""Which repository a branch proof may use: one the account itself declared (DESIGN §5).

A release's Project-URLs are written by whoever uploads it. If any uploader could name the
repository, a maintainer (or a co-owner) would upload a release naming a repository of their
own, push the branch there and be handed the account. So a repository counts only when the
account's own uploads declared it, at least DECLARED_BEFORE before the request was filed (an
attacker who just took the account cannot plant one), on a host in REPOSITORY_HOSTS.

A release published through a trusted publisher is recorded with the account that added the
publisher as its uploader, but its metadata was written by whoever can run that CI job — any
collaborator with push access to the workflow. It is not the account's own declaration.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings

from relatch.accounts.models import User
from relatch.index.models import Project, Release, Role
from relatch.index.trusted.describe import describe_publisher
from relatch.recovery.proofs.git import repository_url

DECLARED_BEFORE = timedelta(days=30)
PUBLIC_FORGES = ("github.com", "gitlab.com", "codeberg.org", "bitbucket.org")


@dataclass(frozen=True)
class Declaration:
    """A repository URL as one release named it: who uploaded that release, and when."""

    project: str
    url: str
    version: str
    uploader_id: int | None
    uploader: str
    declared_at: datetime
    # "GitHub Actions: acme/tool, workflow release.yml" when a trusted publisher uploaded it.
    publisher: str = ""


def listed_hosts() -> frozenset[str]:
    return frozenset(h.lower() for h in getattr(settings, "REPOSITORY_HOSTS", PUBLIC_FORGES))


def host_is_listed(url: str) -> bool:
    """Whether the URL's host is one Relatch may ask (the address checks come at contact)."""
    return (urlsplit(url).hostname or "").lower() in listed_hosts()


def declarations(project: Project) -> list[Declaration]:
    """Every repository URL the project's releases name, oldest release first."""
    found = []
    releases = project.releases.select_related("uploader", "trusted_publisher").order_by(
        "created_at", "pk"
    )
    for release in releases:
        for label, url in _entries(release):
            repo = repository_url(label, url)
            if repo:
                found.append(_declaration(project, release, repo))
    return found


def _entries(release: Release) -> list[tuple[str, str]]:
    entries = release.project_urls if isinstance(release.project_urls, dict) else {}
    return [(str(label), str(url)) for label, url in entries.items()]


def _declaration(project: Project, release: Release, url: str) -> Declaration:
    uploader = release.uploader
    publisher = release.trusted_publisher
    return Declaration(project=project.name, url=url, version=release.version,
                       uploader_id=uploader.pk if uploader else None,
                       uploader=uploader.username if uploader else "",
                       declared_at=release.created_at,
                       publisher=describe_publisher(publisher) if publisher else "")


def why_not(declaration: Declaration, *, account: User, filed_at: datetime) -> str:
    """Why this declaration does not make its repository count ("" when it does)."""
    if declaration.publisher:
        return (f"{declaration.url} was declared by release {declaration.version}, published "
                f"by a CI job ({declaration.publisher}), not by this account's own hand.")
    if declaration.uploader_id != account.pk:
        who = declaration.uploader or "an upload with no account"
        return (f"{declaration.url} was declared by release {declaration.version}, uploaded by "
                f"{who}, not by this account.")
    if declaration.declared_at > filed_at - DECLARED_BEFORE:
        return (f"{declaration.url} was first declared by this account on "
                f"{declaration.declared_at:%Y-%m-%d}, less than {DECLARED_BEFORE.days} days "
                "before the request.")
    if not host_is_listed(declaration.url):
        return (f"{declaration.url} is not on a host Relatch checks (RELATCH_REPOSITORY_HOSTS).")
    return ""


def judge(*, account: User, project: Project, url: str, filed_at: datetime) -> tuple[bool, str]:
    """Whether ``url`` counts as ``project``'s repository for a request filed at ``filed_at``,
    and why (in words for staff)."""
    if not Role.objects.filter(project=project, user=account).exists():
        return False, f"This account has no role in {project.name} any more."
    seen = [d for d in declarations(project) if d.url == url]
    reasons = [why_not(d, account=account, filed_at=filed_at) for d in seen]
    for declaration, reason in zip(seen, reasons, strict=True):
        if not reason:
            return True, (f"Declared by release {declaration.version}, which this account "
                          f"uploaded on {declaration.declared_at:%Y-%m-%d}.")
    return False, reasons[0] if reasons else f"No release of {project.name} names {url}."


def eligible(*, account: User, project: Project, filed_at: datetime) -> tuple[list[str], str]:
    """The repository URLs of ``project`` a branch proof may use, and, when there are none,
    why (the first reason, for staff)."""
    urls: dict[str, None] = {}
    reasons: list[str] = []
    for declaration in declarations(project):
        reason = why_not(declaration, account=account, filed_at=filed_at)
        if reason:
            reasons.append(reason)
        else:
            urls[declaration.url] = None
    if urls:
        return list(urls), ""
    return [], reasons[0] if reasons else f"No release of {project.name} names a repository."
