"""What ``relatch backup`` and ``relatch restore`` share: messages, paths, the signing
key file, and reading the list of files a database holds."""

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

FORMAT = "relatch-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
KEY_FILE = "secret_key"
FILES = "files"
SQLITE_FILE = "database.sqlite3"
POSTGRES_FILE = "database.dump"
CHUNK = 1024 * 1024
# At most this many problems are listed in a message; the count says how many there were.
SHOWN_PROBLEMS = 20
# libpq connection parameters that dj-database-url may put in OPTIONS and pg_dump understands.
_LIBPQ_OPTIONS = {
    "sslmode", "sslrootcert", "sslcert", "sslkey", "sslcrl", "sslpassword", "connect_timeout",
    "application_name", "options", "target_session_attrs", "passfile", "service", "gssencmode",
    "channel_binding", "sslnegotiation",
}
SECRET_WORDS = ("SECRET", "PASSWORD", "TOKEN")


class BackupError(Exception):
    """The backup or restore cannot go on; the message says why and what was (not) changed."""


# --- small helpers ---------------------------------------------------------------------------

def say(message: str) -> None:
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def human_size(count: int) -> str:
    """Bytes as people read them: "950 bytes", "4.2 MB"."""
    value = float(count)
    for unit in ("bytes", "kB", "MB", "GB"):
        if value < 1000:
            return f"{count:,} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def listed_problems(problems: list[str]) -> str:
    shown = "\n".join(f"  - {p}" for p in problems[:SHOWN_PROBLEMS])
    more = len(problems) - SHOWN_PROBLEMS
    return shown + (f"\n  … and {more} more" if more > 0 else "")


def sha256_of(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def relative(path: str) -> PurePosixPath:
    """A storage name as a safe relative path (no absolute path, no ``..``)."""
    pure = PurePosixPath(path)
    if not path or pure.is_absolute() or any(part in ("", ".", "..") for part in pure.parts):
        raise BackupError(f"refusing the unsafe storage path {path!r}")
    return pure


def write_secret(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600 from the start, atomically (temp + rename)."""
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def data_dir() -> Path:
    """RELATCH_DATA_DIR as the settings read it, without importing them (they would make a
    signing key when there is none)."""
    return Path(os.environ.get("RELATCH_DATA_DIR") or Path.cwd() / "data").resolve()


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "relatch.settings")
    import django

    django.setup()


def relatch_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("relatch")
    except PackageNotFoundError:
        return "unknown"


def utc_now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# --- the database, for both kinds --------------------------------------------------------------

def database_kind() -> str:
    from django.db import connection

    if connection.vendor not in ("sqlite", "postgresql"):
        raise BackupError(f"unsupported database: {connection.vendor}")
    return str(connection.vendor)


def postgres_command_env() -> tuple[str, dict[str, str]]:
    """A libpq connection string for pg_dump / pg_restore (without the password, which goes in
    PGPASSWORD so it never shows in the process list) and their environment."""
    from django.conf import settings
    from psycopg.conninfo import make_conninfo

    db = settings.DATABASES["default"]
    params = {"dbname": db.get("NAME"), "user": db.get("USER"), "host": db.get("HOST"),
              "port": db.get("PORT")}
    params.update({k: v for k, v in (db.get("OPTIONS") or {}).items() if k in _LIBPQ_OPTIONS})
    conninfo = make_conninfo(**{k: str(v) for k, v in params.items() if v not in (None, "")})
    # The tools need nothing of Relatch's environment (not the signing key, above all).
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELATCH_")}
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = str(db["PASSWORD"])
    return conninfo, env


def run_tool(command: list[str], env: dict[str, str], what: str) -> None:
    tool = shutil.which(command[0])
    if tool is None:
        raise BackupError(
            f"{command[0]} is not installed (or not on PATH): install the PostgreSQL client "
            "tools, of the server's major version or newer"
        )
    done = subprocess.run(  # noqa: S603  (a fixed command; the arguments are ours)
        [tool, *command[1:]], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise BackupError(f"{what} failed ({command[0]} exited with {done.returncode}):\n"
                          f"{done.stderr.strip()}")


@dataclass(frozen=True)
class Listed:
    """One file the snapshot lists: its storage path, digest and size (a distribution file, or
    the PEP 658 metadata beside a wheel, whose size the row does not record)."""

    path: str
    sha256: str
    size: int | None
    filename: str
    kind: str  # "file" or "metadata"


def _file_columns() -> tuple[str, list[str]]:
    from relatch.index.models import File

    names = ["filename", "path", "size", "sha256_digest", "metadata_sha256_digest"]
    fields = {f.name: f for f in File._meta.concrete_fields}
    return File._meta.db_table, [str(fields[name].column) for name in names]


def listed_files(cursor: Any) -> list[Listed]:
    """Every file the database behind ``cursor`` lists (a DB-API cursor on the snapshot)."""
    from relatch.index.upload.storage import metadata_path

    table, columns = _file_columns()
    quoted = ", ".join(f'"{column}"' for column in columns)
    cursor.execute(f'SELECT {quoted} FROM "{table}" ORDER BY "{columns[1]}"')  # noqa: S608
    found: list[Listed] = []
    for filename, path, size, sha256, metadata_sha256 in cursor.fetchall():
        found.append(Listed(path, sha256, int(size), filename, "file"))
        if metadata_sha256:
            found.append(Listed(metadata_path(path), metadata_sha256, None, filename, "metadata"))
    return found


