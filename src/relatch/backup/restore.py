"""``relatch restore DIR``: check the whole backup, then put back the key, the database and
the files, migrate, and check every file (see ``relatch.backup``)."""

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from relatch.backup.common import (
    CHUNK,
    FILES,
    FORMAT,
    FORMAT_VERSION,
    KEY_FILE,
    MANIFEST,
    BackupError,
    human_size,
    listed_files,
    listed_problems,
    plural,
    postgres_command_env,
    relative,
    run_tool,
    say,
    setup_django,
    sha256_of,
    write_secret,
)


@dataclass
class _Backup:
    """A backup directory whose manifest, key, database and files all checked out."""

    root: Path
    manifest: dict[str, Any]
    key: str
    entries: list[dict[str, Any]] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return str(self.manifest["database"]["kind"])

    @property
    def database_file(self) -> Path:
        return self.root / str(self.manifest["database"]["file"])

    @property
    def total_size(self) -> int:
        return sum(int(e["size"]) for e in self.entries)


def _read_backup(root: Path) -> _Backup:
    """Check everything in ``root`` before anything is changed."""
    if not root.is_dir():
        raise BackupError(f"{root} is not a directory")
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise BackupError(f"{root} is not a complete Relatch backup: it has no {MANIFEST} (a "
                          "backup that did not finish has none)")
    try:
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("format") != FORMAT:
            raise ValueError("not a Relatch backup manifest")
        if manifest.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"format version {manifest.get('format_version')} is not "
                             f"{FORMAT_VERSION}")
        entries = list(manifest["files"]["entries"])
        kind = manifest["database"]["kind"]
    except (ValueError, KeyError, TypeError) as error:
        raise BackupError(f"{manifest_path} cannot be read: {error}") from None
    if kind not in ("sqlite", "postgresql"):
        raise BackupError(f"{manifest_path} names an unknown database kind {kind!r}")

    key_path = root / KEY_FILE
    if not key_path.is_file():
        raise BackupError(
            f"the backup has no signing key ({key_path} is missing). Without the key every "
            "authenticator-app code fails, and every session and link in flight is void; put "
            "the key file back (from where the backup was made) and run the restore again"
        )
    key = key_path.read_text().strip()
    if hashlib.sha256(key.encode()).hexdigest() != manifest["secret_key"]["sha256"]:
        raise BackupError(f"{key_path} is not the signing key this backup was made with")

    backup = _Backup(root, manifest, key, entries)
    database = backup.database_file
    if not database.is_file():
        raise BackupError(f"the backup's database {database} is missing")
    if sha256_of(database) != (manifest["database"]["sha256"], manifest["database"]["size"]):
        raise BackupError(f"the backup's database {database} does not match its checksum in "
                          "the manifest (damaged or changed since the backup)")

    problems = []
    for entry in entries:
        path = root / FILES / relative(str(entry["path"]))
        if not path.is_file():
            problems.append(f"{entry['path']}: missing from the backup")
        elif sha256_of(path) != (entry["sha256"], entry["size"]):
            problems.append(f"{entry['path']}: its SHA-256 does not match the manifest "
                            "(damaged or changed since the backup)")
    if problems:
        raise BackupError(f"{plural(len(problems), 'file')} of the backup cannot be trusted:\n"
                          f"{listed_problems(problems)}")
    return backup


def _table_rows(tables: dict[str, str], query: Callable[[str], int]) -> dict[str, int]:
    return {label: query(table) for label, table in tables.items()}


def _target_contents() -> dict[str, int]:
    """How many accounts, projects, files and security events the target database holds (an
    empty dict: no Relatch tables at all). Reads only: a missing SQLite file stays missing."""
    from django.conf import settings
    from django.db import connection

    from relatch.accounts.models import User
    from relatch.audit.models import SecurityEvent
    from relatch.index.models import File, Project

    wanted = {"accounts": User._meta.db_table, "projects": Project._meta.db_table,
              "files": File._meta.db_table, "security events": SecurityEvent._meta.db_table}
    if connection.vendor == "sqlite":
        path = Path(settings.DATABASES["default"]["NAME"])
        if not path.exists():
            return {}
        # Not through Django: its connection would switch the file to WAL on opening it.
        plain = sqlite3.connect(path, timeout=20)
        try:
            present = {row[0] for row in plain.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not present:
                return {}
            return _table_rows({k: v for k, v in wanted.items() if v in present}, lambda t: int(
                plain.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]))  # noqa: S608
        finally:
            plain.close()
    present = set(connection.introspection.table_names())
    if not present:
        return {}
    with connection.cursor() as cursor:
        def count(table: str) -> int:
            cursor.execute(f'SELECT count(*) FROM "{table}"')  # noqa: S608
            return int(cursor.fetchone()[0])

        counts = _table_rows({k: v for k, v in wanted.items() if v in present}, count)
    return {**counts, "tables": len(present)}


def _stored_anything() -> bool:
    """Whether the storage already holds distribution files (under ``packages/``)."""
    from django.core.files.storage import default_storage

    try:
        directories, files = default_storage.listdir("packages")
    except (FileNotFoundError, NotADirectoryError):
        return False
    return bool(directories or files)


def _describe_files() -> str:
    """Where distribution files go: the bucket (RELATCH_FILES_URL) or the files directory."""
    from django.conf import settings

    if settings.FILES_URL:
        return f"the bucket {settings.FILES_URL}"
    return f"the files directory {settings.FILES_DIR}"


def _describe_database() -> str:
    from django.conf import settings
    from django.db import connection

    db = settings.DATABASES["default"]
    if connection.vendor == "sqlite":
        return f"the SQLite database {db['NAME']}"
    return f"the PostgreSQL database {db['NAME']!r} on {db.get('HOST') or 'localhost'}"


def _check_target(backup: _Backup, *, force: bool) -> tuple[dict[str, int], bool]:
    from django.db import DatabaseError, connection

    kind = connection.vendor
    if kind != backup.kind:
        raise BackupError(
            f"the backup holds a {backup.kind} database but RELATCH_DATABASE_URL names "
            f"{kind}: restore into the same kind of database (set RELATCH_DATABASE_URL)"
        )
    try:
        contents = _target_contents()
    except DatabaseError as error:
        raise BackupError(f"cannot read {_describe_database()}: {error}".strip()
                          + (" (create it first, e.g. with createdb)"
                             if kind == "postgresql" else "")) from None
    has_data = any(v for k, v in contents.items() if k != "tables")
    stored = _stored_anything()
    if (has_data or stored) and not force:
        what = ", ".join(plural(v, k.removesuffix("s"))
                         for k, v in contents.items() if k != "tables" and v)
        reasons = []
        if has_data:
            reasons.append(f"{_describe_database()} holds data ({what})")
        if stored:

            reasons.append(f"{_describe_files()} already holds files")
        raise BackupError(
            "the target is not empty: " + "; ".join(reasons) + ". A restore replaces them: "
            "point RELATCH_DATA_DIR / RELATCH_DATABASE_URL at an empty place, or run the "
            "restore again with --force to overwrite (what is there now is lost)"
        )
    return contents, has_data or stored


def _restore_key(backup: _Backup) -> str:
    """Put the key where the settings look for it; say where it went (never what it is)."""
    from django.conf import settings

    if os.environ.get("RELATCH_SECRET_KEY"):
        return ("RELATCH_SECRET_KEY is set to the backup's key: the data directory needs no "
                "key file")
    path = settings.DATA_DIR / KEY_FILE
    settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
    note = ""
    if path.exists():
        existing = path.read_text().strip()
        if existing != backup.key:
            kept = path.with_name(f"{KEY_FILE}.before-restore-"
                                  f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}")
            path.replace(kept)
            note = f" (the key that was there is kept as {kept.name})"
    write_secret(path, backup.key + "\n")
    return f"written to {path} with mode 0600{note}"


def _restore_sqlite(backup: _Backup) -> None:
    """Into the target file with SQLite's backup API: a transaction of the target database, so a
    -wal file left beside an old one can never be replayed over the restored pages."""
    from django.conf import settings
    from django.db import connections

    connections.close_all()
    path = Path(settings.DATABASES["default"]["NAME"])
    path.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(f"file:{backup.database_file}?mode=ro", uri=True)
    target = sqlite3.connect(path, timeout=20)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()


def _restore_postgres(backup: _Backup, contents: dict[str, int]) -> None:
    from django.db import connection, connections

    if contents.get("tables"):
        # Empty tables (a database migrated by a first start), or --force: dropped first, since
        # pg_restore creates every table itself.
        with connection.cursor() as cursor:
            names = ", ".join(connection.ops.quote_name(t)
                              for t in connection.introspection.table_names())
            cursor.execute(f"DROP TABLE IF EXISTS {names} CASCADE")
    connections.close_all()
    conninfo, env = postgres_command_env()
    run_tool(["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error",
               "--single-transaction", f"--dbname={conninfo}", str(backup.database_file)],
              env, "pg_restore")


def _restore_files(backup: _Backup) -> None:
    from django.core.files import File as DjangoFile
    from django.core.files.storage import default_storage

    for entry in backup.entries:
        name = str(entry["path"])
        if default_storage.exists(name):
            default_storage.delete(name)
        with (backup.root / FILES / relative(name)).open("rb") as handle:
            saved = default_storage.save(name, DjangoFile(handle))
        if saved != name:
            default_storage.delete(saved)
            raise BackupError(f"the storage saved {name!r} as {saved!r}")


def _pending_migrations() -> int:
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    return len(executor.migration_plan(executor.loader.graph.leaf_nodes()))


def _verify_restored(backup: _Backup) -> tuple[int, int]:
    """Every file the restored database lists, in the storage with its digest; and the list is
    the backup's."""
    from django.core.files.storage import default_storage
    from django.db import connection

    with connection.cursor() as cursor:
        listed = listed_files(cursor)
    expected = {str(e["path"]) for e in backup.entries}
    problems = []
    if {item.path for item in listed} != expected:
        problems.append("the restored database does not list the files the manifest lists")
    total = 0
    for item in listed:
        digest = hashlib.sha256()
        try:
            with default_storage.open(item.path, "rb") as handle:
                while chunk := handle.read(CHUNK):
                    digest.update(chunk)
                    total += len(chunk)
        except FileNotFoundError:
            problems.append(f"{item.path}: missing from the storage")
            continue
        if digest.hexdigest() != item.sha256:
            problems.append(f"{item.path}: its SHA-256 does not match its row")
    if problems:
        raise BackupError(f"the restored index fails its check:\n{listed_problems(problems)}")
    return len(listed), total


def restore(directory: Path, *, force: bool) -> None:
    """Restore the backup in ``directory`` into this data directory and database."""
    started = time.monotonic()
    root = directory.absolute()
    backup = _read_backup(root)
    files_note = f"{plural(len(backup.entries), 'file')} ({human_size(backup.total_size)})"
    environment_key = os.environ.get("RELATCH_SECRET_KEY")
    if environment_key and environment_key != backup.key:
        raise BackupError(
            "RELATCH_SECRET_KEY is set to another key than the backup's: with it, app codes, "
            f"sessions and links of the restored index would all fail. Unset it (the key in "
            f"{root / KEY_FILE} is then restored to the data directory) or set it to that key"
        )
    # This process signs and unseals with the backup's key; the settings make no new key file.
    os.environ["RELATCH_SECRET_KEY"] = backup.key
    setup_django()
    from django.core.management import call_command

    if not environment_key:
        del os.environ["RELATCH_SECRET_KEY"]
    contents, replacing = _check_target(backup, force=force)
    manifest = backup.manifest
    say(f"Restoring the backup of {manifest['created_at']} (Relatch "
         f"{manifest['relatch_version']}, {backup.kind}): its database, manifest, signing key "
         f"and {files_note} all match their checksums")
    if replacing:
        say(f"--force: replacing what {_describe_database()} and {_describe_files()} hold")
    done = "nothing yet"
    try:
        say(f"Signing key: {_restore_key(backup)}")
        done = "the signing key"
        step = time.monotonic()
        if backup.kind == "sqlite":
            _restore_sqlite(backup)
        else:
            _restore_postgres(backup, contents)
        done = "the signing key and the database"
        database_size = human_size(int(manifest["database"]["size"]))
        say(f"Database: restored {_describe_database()} from {backup.database_file.name} "
            f"({database_size}) in {time.monotonic() - step:.1f} s")
        step = time.monotonic()
        _restore_files(backup)
        done = "the signing key, the database and the files"
        say(f"Files: restored {files_note} into {_describe_files()} in "
             f"{time.monotonic() - step:.1f} s")
        pending = _pending_migrations()
        call_command("migrate", interactive=False, verbosity=0)
        say(f"Migrations: applied {pending}" if pending else
             "Migrations: none to apply (the backup is of this version's schema)")
        step = time.monotonic()
        count, total = _verify_restored(backup)
    except Exception as error:
        raise BackupError(
            f"{error}\nThe restore stopped after {done}: the target is incomplete. Fix the "
            "cause and run the restore again with --force."
        ) from error
    say(f"Checked: all {plural(count, 'file')} the database lists ({human_size(total)}) are in "
         f"the storage with their SHA-256, in {time.monotonic() - step:.1f} s")
    say(f"Restore complete in {time.monotonic() - started:.1f} s.")
    _notes(manifest)


def _notes(manifest: dict[str, Any]) -> None:
    from django.conf import settings

    configuration = manifest.get("configuration") or {}
    then = urlsplit(str(configuration.get("base_url", ""))).hostname
    now = urlsplit(settings.BASE_URL).hostname
    if then and then != now:
        say(f"Note: the backup's base URL was {configuration['base_url']}; here it is "
             f"{settings.BASE_URL}. Security keys work only under the host name they were "
             f"registered at ({then}): set RELATCH_BASE_URL to it.")
    environment = configuration.get("environment") or {}
    if environment:
        say("The backed-up index ran with (passwords and secrets not recorded):")
        for name, value in environment.items():
            say(f"  {name}={value}")
    say("Next: start it (relatch serve), then check that pip installs a package and that "
         "someone with an authenticator app signs in with a code (docs/operations.md, Backups).")


