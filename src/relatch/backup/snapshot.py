"""``relatch backup DIR``: the database first, then the files its snapshot lists, then the
signing key and the manifest (see ``relatch.backup``)."""

import hashlib
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from relatch.backup.common import (
    CHUNK,
    FILES,
    FORMAT,
    FORMAT_VERSION,
    KEY_FILE,
    MANIFEST,
    POSTGRES_FILE,
    SECRET_WORDS,
    SQLITE_FILE,
    BackupError,
    Listed,
    data_dir,
    database_kind,
    fsync_directory,
    human_size,
    listed_files,
    listed_problems,
    plural,
    postgres_command_env,
    relatch_version,
    relative,
    run_tool,
    say,
    setup_django,
    sha256_of,
    utc_now_text,
    write_secret,
)


@dataclass
class _BackupTarget:
    """DIR, and what this run created in it (removed again if the backup fails)."""

    root: Path
    created_root: bool = False

    def prepare(self) -> None:
        if self.root.exists() or self.root.is_symlink():
            if not self.root.is_dir():
                raise BackupError(f"{self.root} exists and is not a directory; nothing was "
                                  "written. Give a new or empty directory.")
            if any(self.root.iterdir()):
                raise BackupError(f"{self.root} is not empty; nothing was written. A backup goes "
                                  "into a new or empty directory, so it never mixes with another.")
            return
        if not self.root.parent.is_dir():
            raise BackupError(f"{self.root.parent} does not exist; nothing was written.")
        self.root.mkdir(mode=0o700)
        self.created_root = True

    def discard(self) -> None:
        """Remove what this run wrote: a failed backup leaves nothing that looks like one."""
        if not self.root.is_dir():
            return
        for entry in self.root.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
        if self.created_root:
            self.root.rmdir()


def _sqlite_snapshot(target: Path) -> list[Listed]:
    """SQLite's online backup API (never a copy of the live file, which may be mid-write and
    has its latest commits in the -wal file): one step, so the copy is one consistent moment,
    while the server goes on writing (WAL lets it). The file list is read from the copy."""
    from django.conf import settings

    live = Path(settings.DATABASES["default"]["NAME"])
    if not live.is_file():
        raise BackupError(f"there is no database at {live}: nothing to back up "
                          "(is RELATCH_DATA_DIR right?)")
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    source = sqlite3.connect(live, timeout=60)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)
        # The copy stands alone: no -wal file beside it.
        copy.execute("PRAGMA journal_mode=DELETE")
        check = copy.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise BackupError(f"the database copy fails SQLite's check: {check}")
        return listed_files(copy.cursor())
    finally:
        copy.close()
        source.close()


def _postgres_snapshot(target: Path) -> list[Listed]:
    """``pg_dump -Fc`` in a snapshot this process exports and holds, and the file list read in
    that same snapshot: both see the database at the same moment, whatever commits meanwhile."""
    from django.db import connection, transaction

    conninfo, env = postgres_command_env()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    connection.ensure_connection()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cursor.execute("SELECT pg_export_snapshot()")
        snapshot = cursor.fetchone()[0]
        run_tool(["pg_dump", "--format=custom", f"--snapshot={snapshot}", f"--file={target}",
                   f"--dbname={conninfo}"], env, "pg_dump")
        return listed_files(cursor)


type Entries = list[dict[str, Any]]


def _copy_listed(listed: Iterable[Listed], files_root: Path,
                 on_problem: Callable[[Listed, str], object]) -> tuple[int, int, Entries]:
    """Copy each listed file from the storage into ``files_root``, hashing on the way.
    Returns the count, the bytes and the manifest entries of the files copied right."""
    from django.core.files.storage import default_storage

    count = total = 0
    entries: Entries = []
    for item in listed:
        destination = files_root / relative(item.path)
        destination.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        try:
            source = default_storage.open(item.path, "rb")
        except FileNotFoundError:
            on_problem(item, "missing from the storage")
            continue
        with source, destination.open("xb") as out:
            while chunk := source.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != item.sha256:
            on_problem(item, f"its SHA-256 in the storage is {digest.hexdigest()}, "
                             f"not {item.sha256} as its row says (damaged or replaced)")
            continue
        if item.size is not None and size != item.size:
            on_problem(item, f"{size} bytes in the storage, not {item.size}")
            continue
        count += 1
        total += size
        entries.append({"path": item.path, "sha256": item.sha256, "size": size,
                        "filename": item.filename, "kind": item.kind})
    return count, total, entries


def _deleted_since(paths: list[str]) -> set[str]:
    """Of ``paths`` (missing from the storage), those whose row is gone from the live database:
    a release deleted after the snapshot took its files with it."""
    from relatch.index.models import File
    from relatch.index.upload.storage import metadata_path

    distributions = {p.removesuffix(metadata_path("")) for p in paths}
    still = set(File.objects.filter(path__in=distributions).values_list("path", flat=True))
    return {p for p in paths if p.removesuffix(metadata_path("")) not in still}


def _redacted(name: str, value: str) -> str:
    if any(word in name for word in SECRET_WORDS):
        return "(set; not recorded)"
    parts = urlsplit(value)
    if parts.scheme and parts.password is not None:
        host = parts.hostname or ""
        netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return value


def _configuration(kind: str) -> dict[str, Any]:
    """What a restore needs to know besides the data: never a password or the key."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    database: dict[str, Any] = {"kind": kind}
    if kind == "sqlite":
        database["path"] = str(db["NAME"])
    else:
        database.update(name=db.get("NAME"), host=db.get("HOST") or "", port=db.get("PORT") or "",
                        user=db.get("USER") or "")
    return {
        "base_url": settings.BASE_URL,
        "data_dir": str(settings.DATA_DIR),
        "files_dir": str(settings.FILES_DIR),
        "database": database,
        "environment": {name: _redacted(name, value) for name, value in sorted(os.environ.items())
                        if name.startswith("RELATCH_") and name != "RELATCH_SECRET_KEY"},
    }


def backup(directory: Path) -> None:
    """Write a backup of this index into ``directory`` (new or empty)."""
    started = time.monotonic()
    target = _BackupTarget(directory.absolute())
    # Before the settings are read: they would make a new signing key where there is none.
    key_in_environment = bool(os.environ.get("RELATCH_SECRET_KEY"))
    if not key_in_environment and not (data_dir() / KEY_FILE).is_file():
        raise BackupError(
            f"no signing key: RELATCH_SECRET_KEY is unset and {data_dir() / KEY_FILE} does not "
            "exist (is RELATCH_DATA_DIR the index's data directory?); nothing was written"
        )
    target.prepare()
    try:
        _write_backup(target.root, key_in_environment=key_in_environment, started=started)
    except BackupError:
        target.discard()
        raise
    except Exception as error:
        target.discard()
        raise BackupError(f"{error.__class__.__name__}: {error}\nThe partial backup was "
                          "removed.") from error
    except BaseException:
        target.discard()
        raise


def _write_backup(root: Path, *, key_in_environment: bool, started: float) -> None:
    setup_django()
    from django.conf import settings

    kind = database_kind()
    created_at = utc_now_text()
    say(f"Backing up the {kind} database, then its files, to {root}")
    database_file = root / (SQLITE_FILE if kind == "sqlite" else POSTGRES_FILE)
    step = time.monotonic()
    listed = _sqlite_snapshot(database_file) if kind == "sqlite" else _postgres_snapshot(
        database_file)
    database_sha256, database_size = sha256_of(database_file)
    how = "SQLite's online backup" if kind == "sqlite" else "pg_dump -Fc"
    distributions = sum(1 for item in listed if item.kind == "file")
    say(f"Database: {database_file.name}, {human_size(database_size)}, taken with {how} in "
         f"{time.monotonic() - step:.1f} s; the snapshot lists {plural(distributions, 'file')}")

    step = time.monotonic()
    problems: dict[str, tuple[Listed, str]] = {}
    count, total, entries = _copy_listed(
        listed, root / FILES, lambda item, why: problems.setdefault(item.path, (item, why)))
    if problems:
        missing = [p for p, (_, why) in problems.items() if why.startswith("missing")]
        deleted = _deleted_since(missing) if missing else set()
        lines = [f"{path}: {why}" + (" — deleted since the snapshot (its release was deleted)"
                                     if path in deleted else "")
                 for path, (_, why) in problems.items()]
        advice = ("Files deleted while the backup ran: run it again."
                  if deleted and len(deleted) == len(problems) else
                  "The storage does not hold what the database lists: find out why before "
                  "relying on any backup (restore the files from an older backup).")
        raise BackupError(f"{plural(len(problems), 'file')} of the snapshot could not be "
                          f"backed up:\n{listed_problems(lines)}\n{advice} The partial backup was "
                          "removed.")
    say(f"Files: copied {plural(distributions, 'distribution file')} and "
         f"{plural(count - distributions, 'PEP 658 metadata file')}, {human_size(total)} in all, "
         f"from the storage in {time.monotonic() - step:.1f} s; each matches the SHA-256 its "
         "row records")

    key = str(settings.SECRET_KEY)
    write_secret(root / KEY_FILE, key + "\n")
    source = ("RELATCH_SECRET_KEY" if key_in_environment
              else str(settings.DATA_DIR / KEY_FILE))
    say(f"Signing key: copied from {source} to {root / KEY_FILE} with mode 0600. It is a "
         "secret: it signs sessions and links and unlocks the authenticator-app secrets. Keep "
         "the backup where only operators can read it.")

    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "relatch_version": relatch_version(),
        "created_at": created_at,
        "finished_at": utc_now_text(),
        "database": {"kind": kind, "file": database_file.name, "size": database_size,
                     "sha256": database_sha256},
        "secret_key": {"file": KEY_FILE, "source": "environment" if key_in_environment
                       else "data directory",
                       "sha256": hashlib.sha256(key.encode()).hexdigest()},
        "configuration": _configuration(kind),
        "files": {"count": count, "distributions": distributions, "total_size": total,
                  "entries": entries},
    }
    fsync_directory(root)
    # Last: only a complete backup has a manifest.
    write_secret(root / MANIFEST, json.dumps(manifest, indent=1) + "\n")
    fsync_directory(root)
    say(f"Manifest: {root / MANIFEST} (written last: a directory without it is not a backup)")
    say(f"Backup complete in {time.monotonic() - started:.1f} s: the database, "
         f"{plural(count, 'file')} ({human_size(total)}) and the signing key.")


