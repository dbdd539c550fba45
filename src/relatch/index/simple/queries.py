"""Reads for the installer-facing pages: a fixed, small number of queries per page."""

from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cache
from typing import Any, NamedTuple

from django.db import connection, models
from django.db.models import Max, Prefetch
from packaging.version import InvalidVersion, Version

from relatch.index.changes import ensure_index_state
from relatch.index.models import File, IndexState, JournalEntry, Project, Release


def iter_project_names(
    chunk_size: int = 2000, *, readable: models.Q | None = None
) -> Iterator[tuple[str, str]]:
    """(name, normalized_name) of every project installers may see, streamed from the
    database in chunks. A quarantined project (PEP 792) is left out: installers must not
    find it (changing a status to or from quarantined changes the list's generation).
    ``readable`` is the reader's filter (relatch.index.simple.access.listed_projects);
    without one, only projects that are not private (what anyone may read)."""
    rows = (
        Project.objects.exclude(status=Project.Status.QUARANTINED)
        .filter(readable if readable is not None else models.Q(private=False))
        .order_by("normalized_name").values_list("name", "normalized_name")
    )
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
    """Which list of projects /simple/ shows (see relatch.index.changes), and the global
    serial (X-PyPI-Last-Serial). The serial is not in /simple/'s ETag (an upload to an
    existing project does not change the list), but it is in the response cache's marker,
    so a kept /simple/ response never carries an older serial than the index has."""

    epoch: str
    generation: int
    serial: int


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


def status_reason(project_id: int) -> str:
    """The reason given with the project's PEP 792 status (read only when a page is built)."""
    row = _fetch_one(_column_sql(Project, "id", "status_reason"), [project_id])
    return str(row[0]) if row is not None and row[0] else ""


def _aware(value: datetime | str) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@cache
def _index_version_sql() -> str:
    quote = connection.ops.quote_name
    state, journal = quote(IndexState._meta.db_table), quote(JournalEntry._meta.db_table)
    # Only names from the models' metadata go into the text; the row id is a parameter.
    # MAX of the primary key is one step down its index, whatever the journal's length.
    return (
        f"SELECT {quote('epoch')}, {quote('generation')}, "  # noqa: S608
        f"(SELECT COALESCE(MAX({quote('id')}), 0) FROM {journal}) "
        f"FROM {state} WHERE {quote('id')} = %s"
    )


def index_version() -> IndexVersion:
    """One lookup of the index's one row (with the global serial), whatever the number of
    projects; a lost row is made again (with a new epoch) rather than failing the page."""
    row = _fetch_one(_index_version_sql(), [IndexState.ROW_ID])
    if row is None:
        state = ensure_index_state()
        return IndexVersion(state.epoch, state.generation, global_serial())
    return IndexVersion._make(row)


def global_serial() -> int:
    """The id of the index's latest change (0 before the first): PyPI's global serial."""
    return JournalEntry.objects.aggregate(serial=Max("id"))["serial"] or 0


class StoredFile(NamedTuple):
    """What /files/ needs of a file row: its digests, when it came, and whose it is."""

    sha256_digest: str
    metadata_sha256_digest: str
    uploaded_at: datetime
    project_id: int
    project_private: bool
    project_status: str


@cache
def _stored_file_sql() -> str:
    quote = connection.ops.quote_name
    file, release, project = (quote(m._meta.db_table) for m in (File, Release, Project))
    # Only names from the models' metadata go into the text; the path is a parameter.
    return (
        f"SELECT f.{quote('sha256_digest')}, f.{quote('metadata_sha256_digest')}, "  # noqa: S608
        f"f.{quote('uploaded_at')}, p.{quote('id')}, p.{quote('private')}, "
        f"p.{quote('status')} FROM {file} f "
        f"JOIN {release} r ON r.{quote('id')} = f.{quote('release_id')} "
        f"JOIN {project} p ON p.{quote('id')} = r.{quote('project_id')} "
        f"WHERE f.{quote('path')} = %s"
    )


def stored_file(path: str) -> StoredFile | None:
    """The file stored as ``path`` with its project's privacy and status; one indexed lookup
    by the unique path (two primary-key joins)."""
    row = _fetch_one(_stored_file_sql(), [path])
    if row is None:
        return None
    sha256, metadata, uploaded_at, project_id, private, status = row
    return StoredFile(sha256, metadata, _aware(uploaded_at), project_id, bool(private), status)


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
    # With each file's trusted publisher, which the JSON API names (in the same query).
    files = Prefetch(
        "files", queryset=File.objects.select_related("trusted_publisher").order_by("filename")
    )
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
    """The release PyPI's JSON API describes as the project's: the highest final release
    that is not yanked; else the highest pre-release that is not yanked; else, every release
    being yanked, the highest yanked final, then pre-release (Warehouse orders by yanked,
    is_prerelease, then version). Versions packaging cannot parse come last."""
    return max(releases, key=_pypi_preference, default=None)


def _pypi_preference(release: Release) -> tuple[bool, bool, tuple[int, Version | str]]:
    key = version_key(release.version)
    is_final = isinstance(key[1], Version) and not key[1].is_prerelease
    return (not release.yanked, is_final, key)


def find_release(releases: list[Release], version: str) -> Release | None:
    """The release whose version equals ``version`` by PEP 440 (1.0 == 1.0.0)."""
    wanted = version_key(version)
    return next((r for r in releases if version_key(r.version) == wanted), None)
