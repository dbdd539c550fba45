"""One migration at a time per database (issue 18 §10).

Two hosts starting at once on a fresh PostgreSQL database both ran ``migrate``: both created
the first tables and one failed ("duplicate key value violates unique constraint
pg_type_typname_nsp_index"); on SQLite two processes failed the same way ("no such index").
``migrate`` (``relatch migrate``, and ``relatch serve`` before it starts anything) now holds
a lock for its whole run, so the second waits for the first and then finds nothing to do:

- PostgreSQL: a session advisory lock, on a connection of its own so nothing ``migrate`` does
  to its connection can drop the lock, and released when that connection closes, even when the
  process dies. Advisory locks belong to one database: other databases on the server wait for
  nothing.
- SQLite: an exclusive ``flock`` on a file beside the database file; the kernel releases it
  when the process dies. A database in memory is the process's own and needs no lock.
"""

import fcntl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from django.db import connections

# Any fixed number: every Relatch process agrees on it ("relatch" in ASCII).
ADVISORY_KEY = int.from_bytes(b"relatch", "big")


@contextmanager
def migration_lock(*, alias: str, waiting: Callable[[], None]) -> Iterator[None]:
    """Hold the database's migration lock for the block; ``waiting()`` is called once when
    another process holds it and this one must wait."""
    connection = connections[alias]
    if connection.vendor == "postgresql":
        with _advisory_lock(alias=alias, waiting=waiting):
            yield
    elif connection.vendor == "sqlite" and not connection.is_in_memory_db():  # type: ignore[attr-defined]
        with _file_lock(path=Path(f"{connection.settings_dict['NAME']}.migrate-lock"),
                        waiting=waiting):
            yield
    else:
        yield


@contextmanager
def _advisory_lock(*, alias: str, waiting: Callable[[], None]) -> Iterator[None]:
    live = connections[alias]
    # The same settings as the live connection (a test run renames its database there).
    locker = type(live)(dict(live.settings_dict), alias)
    try:
        with locker.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_KEY])
            if not cursor.fetchone()[0]:
                waiting()
                cursor.execute("SELECT pg_advisory_lock(%s)", [ADVISORY_KEY])
        yield
    finally:
        locker.close()  # the session ends, and its lock with it


@contextmanager
def _file_lock(*, path: Path, waiting: Callable[[], None]) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            waiting()
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
