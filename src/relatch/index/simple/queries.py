"""Reads for the installer-facing pages: a fixed, small number of queries per page."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Max, Prefetch
from packaging.version import InvalidVersion, Version

from relatch.index.models import File, Project, Release


@dataclass(frozen=True)
class IndexState:
    """What changes whenever the list of projects changes (the /simple/ ETag's source)."""

    count: int
    max_id: int | None
    last_changed_at: datetime | None


def index_state() -> IndexState:
    """One query; a new, renamed or deleted project changes at least one of the three."""
    row = Project.objects.aggregate(
        count=Count("id"), max_id=Max("id"), last_changed_at=Max("last_changed_at")
    )
    return IndexState(row["count"], row["max_id"], row["last_changed_at"])


def iter_project_names(chunk_size: int = 2000) -> Iterator[tuple[str, str]]:
    """(name, normalized_name) of every project, streamed from the database in chunks."""
    rows = Project.objects.order_by("normalized_name").values_list("name", "normalized_name")
    return rows.iterator(chunk_size=chunk_size)


def find_project(normalized_name: str) -> Project | None:
    return Project.objects.filter(normalized_name=normalized_name).first()


def releases_with_files(project: Project) -> list[Release]:
    """The project's releases, each with ``.files`` prefetched; two queries."""
    files = Prefetch("files", queryset=File.objects.order_by("filename"))
    return list(project.releases.order_by("created_at", "id").prefetch_related(files))


def release_files(project: Project) -> list[File]:
    """Every file of the project with its release loaded; one query."""
    return list(
        File.objects.filter(release__project=project).select_related("release")
        .order_by("filename")
    )


def release_versions(project: Project) -> list[str]:
    """Every version of the project (even those whose files were all deleted); one query."""
    versions = project.releases.values_list("version", flat=True)
    return sort_versions(list(versions))


def version_key(version: str) -> tuple[int, Version | str]:
    """PEP 440 order; versions packaging cannot parse sort first, by text."""
    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, version)


def sort_versions(versions: list[str]) -> list[str]:
    return sorted(versions, key=version_key)


def latest_release(releases: list[Release]) -> Release | None:
    """The highest non-yanked release by PEP 440 order; the highest of all when every one is
    yanked (PyPI does the same)."""
    candidates = [r for r in releases if not r.yanked] or releases
    if not candidates:
        return None
    return max(candidates, key=lambda r: version_key(r.version))


def find_release(releases: list[Release], version: str) -> Release | None:
    """The release whose version equals ``version`` by PEP 440 (1.0 == 1.0.0)."""
    wanted = version_key(version)
    return next((r for r in releases if version_key(r.version) == wanted), None)
