"""A PostgreSQL server of a test's (or a benchmark's) own, which it may stop and start.

The suite's PostgreSQL (RELATCH_DATABASE_URL) is shared by every test worker and by other
people's runs on the machine: restarting it would break them. This one lives in a temporary
directory owned by the ``postgres`` user (initdb and pg_ctl refuse to run as root), listens on
a free loopback port, trusts local connections, and is removed on the way out.
"""

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from tests.serving import free_port


def _binaries() -> Path:
    """RELATCH_PG_BINARIES, else the newest Debian-style install (/usr/lib/postgresql/N/bin):
    initdb and pg_ctl are not on the PATH there."""
    if given := os.environ.get("RELATCH_PG_BINARIES"):
        return Path(given)
    def version(pg_ctl: Path) -> int:
        name = pg_ctl.parent.parent.name
        return int(name) if name.isdigit() else 0

    installed = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=version)
    return installed[-1].parent if installed else Path("/usr/lib/postgresql/15/bin")


BINARIES = _binaries()


def available() -> str:
    """Why a private PostgreSQL cannot run here ("" when it can)."""
    if not (BINARIES / "pg_ctl").exists():
        return f"no PostgreSQL binaries in {BINARIES} (set RELATCH_PG_BINARIES)"
    if os.geteuid() != 0 or not shutil.which("runuser"):
        return "needs root and runuser to run PostgreSQL as the postgres user"
    return ""


@dataclass
class PrivatePostgres:
    directory: Path
    port: int

    @property
    def url(self) -> str:
        """The server's URL, without a database name."""
        return f"postgresql://postgres@127.0.0.1:{self.port}"

    def _pg(self, *args: str, timeout: float = 60) -> None:
        done = subprocess.run(
            ["runuser", "-u", "postgres", "--", str(BINARIES / args[0]), *args[1:]],
            capture_output=True, text=True, timeout=timeout, check=False,
        )
        assert done.returncode == 0, f"{args[0]} failed:\n{done.stdout}\n{done.stderr}"

    def start(self) -> None:
        """Start and wait until it accepts connections."""
        options = (f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c full_page_writes=off")
        self._pg("pg_ctl", "-D", str(self.directory / "data"), "-o", options,
                 "-l", str(self.directory / "log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop it: ``fast`` ends every session (as a restart by an operator does)."""
        self._pg("pg_ctl", "-D", str(self.directory / "data"), "-m", mode, "-w", "stop")

    def create_database(self, name: str) -> str:
        """A new, empty database; its URL."""
        import psycopg

        with psycopg.connect(f"{self.url}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"{self.url}/{name}"


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A fresh cluster, started; stopped and removed afterwards."""
    directory = Path(tempfile.mkdtemp(prefix="relatch-pg-"))
    shutil.chown(directory, "postgres", "postgres")
    server = PrivatePostgres(directory, free_port())
    try:
        server._pg("initdb", "-D", str(directory / "data"), "-A", "trust", "-U", "postgres",
                   "-E", "UTF8", "--no-sync")
        server.start()
        yield server
    finally:
        with suppress(AssertionError, subprocess.TimeoutExpired):
            server.stop("immediate")
        shutil.rmtree(directory, ignore_errors=True)
