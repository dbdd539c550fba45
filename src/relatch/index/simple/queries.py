"""Reads for the installer-facing pages: a fixed, small number of queries per page."""

from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cache
from typing import Any, NamedTuple

from django.db import connection, models
from django.db.models import Prefetch
from packaging.version import InvalidVersion, Version

from relatch.index.changes import ensure_index_state
from relatch.index.models import File, IndexState, Project, Release


def iter_project_names(chunk_size: int = 2000) -> Iterator[tuple[str, str]]:
    """(name, normalized_name) of every project, streamed from the database in chunks."""
    rows = Project.objects.order_by("normalized_name").values_list("name", "normalized_name")
    return rows.iterator(chunk_size=chunk_size)


def find_project(normalized_name: str) -> Project | None:
    return Project.objects.filter(normalized_name=normalized_name).first()


class ProjectState(NamedTuple):
    """What a project's simple page is keyed on: ``generation`` grows with every change.

    Every field is part of the response cache's marker: a project made private or quarantined
    changes it, so no response kept before the change is sent after it."""

    id: int
    name: str
    generation: int
    status: str
    private: bool
    last_serial: int
    last_changed_at: datetime


class IndexVersion(NamedTuple):
    """Which list of projects /simple/ shows (see relatch.index.changes)."""

    epoch: str
    generation: int


def _fetch_one(sql: str, params: list[str | int]) -> tuple[Any, ...] | None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


@cache
def _column_sql(model: type[models.Model], *fields: str) -> str:
    """``SELECT <fields> FROM <table> WHERE <first field> = %s``, names quoted for the
    database in use. The fields are plain columns (no ``db_column``): a field's name is its
    column's."""
    quote = connection.ops.quote_name
    columns = [quote(model._meta.get_field(name).name) for name in fields]
    # Only names from the model's metadata go into the text; values are always parameters.
    return (f"SELECT {', '.join(columns[1:])} FROM {quote(model._meta.db_table)} "  # noqa: S608
            f"WHERE {columns[0]} = %s")


# These lookups run for every installer request. Plain SQL: building the same query
# through the ORM costs about ten times running it (~250 µs against ~20 µs on SQLite).


def project_state(normalized_name: str) -> ProjectState | None:
    """One indexed lookup by the unique normalized name."""
    sql = _column_sql(
        Project, "normalized_name", "id", "name", "generation", "status", "private",
        "last_serial", "last_changed_at",
    )
    row = _fetch_one(sql, [normalized_name])
    if row is None:
        return None
    # A raw cursor converts nothing: SQLite gives 0/1 and text for the last two columns.
    id_, name, generation, status, private, serial, changed_at = row
    return ProjectState(id_, name, generation, status, bool(private), serial, _aware(changed_at))


def _aware(value: datetime | str) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def index_version() -> IndexVersion:
    """One lookup of the index's one row, whatever the number of projects; a lost row is
    made again (with a new epoch) rather than failing the page."""
    row = _fetch_one(_column_sql(IndexState, "id", "epoch", "generation"), [IndexState.ROW_ID])
    if row is None:
        state = ensure_index_state()
        return IndexVersion(state.epoch, state.generation)
    return IndexVersion._make(row)


def file_digest(path: str) -> str | None:
    """The SHA-256 of the file stored as ``path``; one lookup by the unique path."""
    row = _fetch_one(_column_sql(File, "path", "sha256_digest"), [path])
    return row[0] if row is not None else None


def metadata_digest(dist_path: str) -> str | None:
    """The SHA-256 of the PEP 658 metadata of the file stored as ``dist_path``, if it has one."""
    row = _fetch_one(_column_sql(File, "path", "metadata_sha256_digest"), [dist_path])
    return row[0] if row is not None and row[0] else None


class FileRow(NamedTuple):
    """One file of a simple page: only the columns the page shows."""

    filename: str
    path: str
    sha256_digest: str
    metadata_sha256_digest: str
    size: int
    uploaded_at: datetime
    file_requires_python: str
    release_requires_python: str
    yanked: bool
    yanked_reason: str

    @property
    def requires_python(self) -> str:
        """The file's own Requires-Python, else its release's."""
        return self.file_requires_python or self.release_requires_python


_FILE_ROW_COLUMNS = (
    "filename", "path", "sha256_digest", "metadata_sha256_digest", "size", "uploaded_at",
    "requires_python", "release__requires_python", "release__yanked", "release__yanked_reason",
)


def file_rows(project_id: int) -> list[FileRow]:
    """Every file of the project with its release's yank and Requires-Python; one query, plain
    tuples: no model instances, none of the release's README or JSON columns."""
    rows = (
        File.objects.filter(release__project_id=project_id)
        .order_by("filename").values_list(*_FILE_ROW_COLUMNS)
    )
    return [FileRow._make(row) for row in rows]


def releases_with_files(project: Project) -> list[Release]:
    """The project's releases, each with ``.files`` prefetched; two queries."""
    files = Prefetch("files", queryset=File.objects.order_by("filename"))
    return list(project.releases.order_by("created_at", "id").prefetch_related(files))


def release_versions(project_id: int) -> list[str]:
    """Every version of the project (even those whose files were all deleted); one query."""
    versions = (
        Release.objects.filter(project_id=project_id).order_by().values_list("version", flat=True)
    )
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
