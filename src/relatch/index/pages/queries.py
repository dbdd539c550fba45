"""Reads for the public pages: a project with its releases, files and maintainers; a user's
projects; the recently updated projects. Each page costs a fixed number of queries."""

from dataclasses import dataclass

from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.db.models.functions import Lower
from django.urls import reverse
from packaging.utils import canonicalize_version
from packaging.version import InvalidVersion, Version

from relatch.accounts.models import User
from relatch.index.models import File, Project, Release, Role
from relatch.index.trusted.describe import describe_publisher, repository_url

RECENT_PROJECTS = 10
# Plain characters only: a tab or newline inside "java\tscript:" is dropped by browsers.
_LINK_SCHEMES = ("http://", "https://")


@dataclass(frozen=True)
class ProjectLink:
    """One of a release's project URLs; ``href`` is empty when it must not be a link."""

    label: str
    url: str
    href: str


@dataclass(frozen=True)
class FileRow:
    filename: str
    url: str
    packagetype: str
    size: int
    sha256: str
    # How it was published ("" when not recorded), and the publisher's repository page.
    published_via: str = ""
    published_href: str = ""


@dataclass(frozen=True)
class ProjectPage:
    """What the project page shows. ``shown`` is the release whose details appear: the one asked
    for, else the latest (or, when every release is yanked, the newest yanked one)."""

    project: Project
    releases: list[Release]
    latest: Release | None
    shown: Release | None
    files: list[FileRow]
    links: list[ProjectLink]
    roles: list[Role]

    @property
    def all_yanked(self) -> bool:
        return bool(self.releases) and self.latest is None


def version_key(release: Release) -> tuple[int, Version | str]:
    """PEP 440 order; a version packaging cannot parse sorts below every valid one."""
    try:
        return (1, Version(release.version))
    except InvalidVersion:
        return (0, release.version)


def latest_release(releases: list[Release]) -> Release | None:
    """The newest release that is not yanked, preferring final releases to pre-releases (as pip
    does); None when every release is yanked or there are none."""
    live = [r for r in releases if not r.yanked]
    finals = [r for r in live if not _is_prerelease(r)]
    return max(finals or live, key=version_key, default=None)


def _is_prerelease(release: Release) -> bool:
    key = version_key(release)[1]
    return isinstance(key, Version) and key.is_prerelease


def is_http_link(url: str) -> bool:
    """Only an absolute http(s) URL made of printable characters becomes a link; anything else
    (javascript:, data:, a control character that browsers would strip) stays text."""
    return (
        url.lower().startswith(_LINK_SCHEMES)
        and len(url) > len("https://")
        and url.isprintable()
        and " " not in url
    )


def project_links(release: Release) -> list[ProjectLink]:
    """The release's Project-URLs (and Home-page when not among them), labels as uploaded."""
    urls = release.project_urls if isinstance(release.project_urls, dict) else {}
    pairs = [(str(label), str(url)) for label, url in urls.items()]
    if release.home_page and release.home_page not in {url for _, url in pairs}:
        pairs.insert(0, ("Homepage", release.home_page))
    return [
        ProjectLink(label=label, url=url, href=url if is_http_link(url) else "")
        for label, url in pairs
    ]


def file_rows(release: Release) -> list[FileRow]:
    files = File.objects.filter(release=release).select_related("trusted_publisher")
    return [
        FileRow(
            filename=f.filename,
            url=reverse("simple:file", kwargs={"path": f.path}),
            packagetype=f.get_packagetype_display(),
            size=f.size,
            sha256=f.sha256_digest,
            **_published_via(f),
        )
        for f in files.order_by("filename")
    ]


def _published_via(file: File) -> dict[str, str]:
    """What installers may learn of a file's way in (as PyPI shows "Trusted Publishing"): the
    CI repository and workflow of a trusted publisher, else only the kind; a token's name is
    private to its account."""
    if file.trusted_publisher is not None:
        return {"published_via": describe_publisher(file.trusted_publisher),
                "published_href": repository_url(file.trusted_publisher) or ""}
    if file.uploaded_via:
        return {"published_via": file.get_uploaded_via_display()}
    return {}


def maintainer_roles(project: Project) -> list[Role]:
    """Owners first, then maintainers, each by username."""
    owner_first = Case(When(kind=Role.Kind.OWNER, then=Value(0)), default=Value(1),
                       output_field=IntegerField())
    return list(
        Role.objects.filter(project=project).select_related("user")
        .order_by(owner_first, Lower("user__username"))
    )


def _releases(project: Project) -> list[Release]:
    # Descriptions can be megabytes: only the shown release's is loaded (shown_description).
    rows = Release.objects.filter(project=project).defer("description", "extra_metadata")
    return sorted(rows, key=version_key, reverse=True)


def _pick_shown(releases: list[Release], latest: Release | None, version: str | None
                ) -> Release | None:
    if version is None:
        return latest or (releases[0] if releases else None)
    wanted = canonicalize_version(version)
    return next((r for r in releases if r.canonical_version == wanted), None)


def project_page(*, normalized_name: str, version: str | None = None) -> ProjectPage | None:
    """The project page's data (5 queries), or None when the project (or the version asked
    for) does not exist."""
    project = Project.objects.filter(normalized_name=normalized_name).first()
    if project is None:
        return None
    releases = _releases(project)
    latest = latest_release(releases)
    shown = _pick_shown(releases, latest, version)
    if version is not None and shown is None:
        return None
    return ProjectPage(
        project=project, releases=releases, latest=latest, shown=shown,
        files=file_rows(shown) if shown else [], links=project_links(shown) if shown else [],
        roles=maintainer_roles(project),
    )


def shown_description(release: Release) -> str:
    """The description deferred by project_page, in one query."""
    value = Release.objects.filter(pk=release.pk).values_list("description", flat=True).first()
    return value or ""


def public_user(username: str) -> User | None:
    """An account by username, ignoring case (usernames are unique ignoring case)."""
    return User.objects.filter(username__iexact=username).first()


def readable_projects(readable: Q | None) -> QuerySet[Project]:
    """The projects a visitor may read: ``readable`` is access.readable_filter's answer, None
    for an anonymous visitor (who reads what is not private)."""
    return Project.objects.filter(Q(private=False) if readable is None else readable)


def user_roles(user: User, *, readable: Q | None) -> QuerySet[Role]:
    """The user's roles on projects the visitor may read, with the projects, by name (one
    query: the filter is a subquery). Never a quarantined project: a public profile must not
    point anyone at what staff hid (its people see it on their own project pages)."""
    shown = readable_projects(readable).exclude(status=Project.Status.QUARANTINED)
    return Role.objects.filter(user=user, project__in=shown).select_related(
        "project").order_by("project__normalized_name")


def recently_updated_projects(limit: int = RECENT_PROJECTS, *, readable: Q | None
                              ) -> list[Project]:
    """The projects the visitor may read changed most recently (uploads, yanks, deletions),
    newest first; never a quarantined one (PEP 792: hidden from everyone but its people and
    the staff)."""
    rows = readable_projects(readable).exclude(status=Project.Status.QUARANTINED)
    return list(rows.order_by("-last_changed_at", "normalized_name")[:limit])
