"""One migration at a time per database (issue 18 §10).

Two hosts starting at once on a fresh database both ran ``migrate``, and one failed
("duplicate key value violates unique constraint pg_type_typname_nsp_index" on PostgreSQL;
Django's own ``migrate`` twice at once on SQLite: 'table "accounts_user" already exists').
``relatch migrate`` (and ``relatch serve``, which migrates before it starts anything) now
takes a lock for its whole run (``relatch.web.migration_lock``): the second waits for the
first, then finds nothing to do.

The end-to-end tests hold the lock as a third host would, start two real ``relatch migrate``
processes, and let go once both wait: one migrates, the other then finds nothing to do. The
unit tests take the lock in two threads, each with its own connection (or open file), as two
processes would.
"""

import fcntl
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.db.utils import ConnectionHandler

from relatch.web import migration_lock as lock_module
from relatch.web.migration_lock import ADVISORY_KEY, migration_lock
from tests import private_postgres
from tests.serving import RELATCH, relatch_env, wait_for

WAITING = "Another process is migrating this database; waiting"


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server of the test's own: each test makes fresh databases on it."""
    if reason := private_postgres.available():
        pytest.skip(reason)
    with private_postgres.private_postgres() as server:
        yield server.url


def migrate_twice_while_locked(data_dir: Path, hold: Callable[[], Any], tmp: Path,
                               **env: str) -> list[subprocess.CompletedProcess[str]]:
    """Start two ``relatch migrate`` on one database while ``hold`` (a context manager) holds
    its migration lock, as a third host would; release it once both say they wait. Both
    results. Holding the lock first makes the overlap certain, whatever the machine's speed."""
    environment = relatch_env(data_dir, **env)
    logs = [tmp / f"migrate-{n}.err" for n in range(2)]
    with hold():
        processes = [
            subprocess.Popen([str(RELATCH), "migrate", "--no-input"], env=environment,
                             stdout=subprocess.PIPE, stderr=log.open("w"), text=True)
            for log in logs
        ]
        both_wait = wait_for(lambda: all(WAITING in log.read_text() for log in logs), 120)
    outs = [process.communicate(timeout=300)[0] for process in processes]
    assert both_wait, [log.read_text() for log in logs]
    return [subprocess.CompletedProcess(p.args, p.returncode, out, log.read_text())
            for p, out, log in zip(processes, outs, logs, strict=True)]


def assert_one_migrated_and_the_other_found_it_done(
    results: list[subprocess.CompletedProcess[str]],
) -> None:
    for result in results:
        assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    # Serialised: one did it all, the other (waiting for it) found the work done.
    migrated = [r for r in results if "Applying accounts.0001_initial... OK" in r.stdout]
    assert len(migrated) == 1, [r.stdout for r in results]
    (other,) = [r for r in results if r is not migrated[0]]
    assert "No migrations to apply." in other.stdout, other.stdout


SELECT_EVERY_MODEL = """
from django.apps import apps
models = apps.get_models()
for model in models:
    list(model._base_manager.all()[:1])  # every column Django expects, in its table
print("SCHEMA OK", len(models))
"""


def assert_schema_complete(data_dir: Path, **env: str) -> None:
    """Nothing left to migrate, and every model's table has every column it should."""
    done = subprocess.run(
        [str(RELATCH), "migrate", "--check", "--no-input"], env=relatch_env(data_dir, **env),
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, f"unapplied migrations:\n{done.stdout}\n{done.stderr}"
    done = subprocess.run(
        [str(RELATCH), "shell", "-c", SELECT_EVERY_MODEL], env=relatch_env(data_dir, **env),
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0 and "SCHEMA OK" in done.stdout, done.stderr


@pytest.mark.slow
@pytest.mark.own_database  # its databases are its own
def test_two_migrations_at_once_on_a_fresh_sqlite_database(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()

    @contextmanager
    def hold() -> Iterator[None]:
        with (data_dir / "relatch.sqlite3.migrate-lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    results = migrate_twice_while_locked(data_dir, hold, tmp_path)
    assert_one_migrated_and_the_other_found_it_done(results)
    assert_schema_complete(data_dir)


@pytest.mark.slow
@pytest.mark.own_database  # its databases are its own
def test_two_migrations_at_once_on_a_fresh_postgresql_database(
    tmp_path: Path, postgres_url: str
) -> None:
    import psycopg

    url = fresh_database(postgres_url)

    @contextmanager
    def hold() -> Iterator[None]:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", [ADVISORY_KEY])
            yield

    results = migrate_twice_while_locked(tmp_path / "data", hold, tmp_path,
                                         RELATCH_DATABASE_URL=url)
    assert_one_migrated_and_the_other_found_it_done(results)
    assert_schema_complete(tmp_path / "data", RELATCH_DATABASE_URL=url)


def fresh_database(server_url: str) -> str:
    import psycopg

    name = f"relatch_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{server_url}/{name}"


# --- the lock itself ----------------------------------------------------------------------


@pytest.fixture
def database(monkeypatch: pytest.MonkeyPatch, django_db_blocker: Any) -> Iterator[Any]:
    """``use(settings)``: the lock takes its connections from a handler of the test's own,
    on one database, instead of the suite's; connecting is allowed (pytest-django blocks it
    outside database tests, and these need no test database)."""

    def use(database: dict[str, Any]) -> None:
        monkeypatch.setattr(lock_module, "connections", ConnectionHandler({"default": database}))

    with django_db_blocker.unblock():
        yield use


class Taker(threading.Thread):
    """Takes the migration lock in a thread (its own connection, as another process would
    have); notes when it had to wait and when it got the lock; holds it until released."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.waited = threading.Event()
        self.holds = threading.Event()
        self.release = threading.Event()

    def run(self) -> None:
        with migration_lock(alias="default", waiting=self.waited.set):
            self.holds.set()
            self.release.wait(30)


def assert_a_held_lock_makes_the_next_taker_wait() -> None:
    first, second = Taker(), Taker()
    first.start()
    assert first.holds.wait(10) and not first.waited.is_set()
    second.start()
    assert second.waited.wait(10), "the second taker did not wait"
    assert not second.holds.wait(0.5), "the second taker got the lock the first still holds"
    first.release.set()
    assert second.holds.wait(10), "the second taker did not get the lock once it was free"
    second.release.set()
    first.join(10)
    second.join(10)
    assert not (first.is_alive() or second.is_alive())


def test_a_held_sqlite_lock_makes_the_next_taker_wait(database: Any, tmp_path: Path) -> None:
    """flock on a file beside the database file: two takers in one process (two open files)
    wait for each other as two processes do."""
    path = tmp_path / "relatch.sqlite3"
    database({"ENGINE": "django.db.backends.sqlite3", "NAME": str(path)})
    assert_a_held_lock_makes_the_next_taker_wait()
    with Path(f"{path}.migrate-lock").open() as handle:  # released: free for anyone at once
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)


@pytest.mark.slow
def test_a_held_postgresql_lock_makes_the_next_taker_wait(database: Any,
                                                          postgres_url: str) -> None:
    """A session advisory lock: the second session waits; the lock ends with the session that
    holds it (a dead process's too), so nothing stays locked."""
    import dj_database_url
    import psycopg

    url = fresh_database(postgres_url)
    database(dj_database_url.parse(url))
    assert_a_held_lock_makes_the_next_taker_wait()
    with psycopg.connect(url) as conn:
        left = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
            "AND classid::bigint = %s AND objid::bigint = %s",
            [ADVISORY_KEY >> 32, ADVISORY_KEY & 0xFFFFFFFF],
        ).fetchone()
    assert left == (0,)


def test_an_in_memory_sqlite_database_takes_no_lock(database: Any) -> None:
    """It belongs to the process: nobody else can migrate it."""
    database({"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"})
    calls: list[str] = []
    with migration_lock(alias="default", waiting=lambda: calls.append("waited")), \
            migration_lock(alias="default", waiting=lambda: calls.append("waited")):
        pass
    assert calls == []
