"""The index's change stamp: eight bytes in the data directory that every committed index change
rewrites, so a web process can tell "nothing changed" without asking the database.

The web processes' kept responses (``relatch.index.simple.response_cache``) read it on every
request. A read is a load from a page all processes of the host map: no system call and no
release of the GIL. Reading the database instead costs little alone, but SQLite and psycopg
let go of the GIL for it, and under load the thread then waits for another thread to hand it
back; that wait, not the query, was most of a kept answer's time and tail latency.

The stamp is a hint, never the truth: the database's change counters (``relatch.index.changes``)
stay that. A stamp that did not move while a change committed (a process killed between the
commit and its write, a hand-made SQL edit, another host, a data directory that cannot be
written) costs at most ``response_cache.TRUST_SECONDS`` of an old page, because a kept answer
is checked against the database at least that often whatever the stamp says. On PostgreSQL
another host's change moves it too, as soon as it commits: each web process listens for the
change's notification and bumps the stamp (``relatch.index.change_listener``); the bound then
covers only the times that listener is not connected.
"""

import functools
import logging
import mmap
import os
import secrets
from pathlib import Path

logger = logging.getLogger(__name__)

SIZE = 8


class ChangeStamp:
    """A value shared by every process that maps ``path``; opened on first use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._map: mmap.mmap | None = None
        self._writable = False
        self._unavailable = False

    def read(self) -> int | None:
        """The current value; None when the file cannot be used (then nothing may be trusted)."""
        mapped = self._mapped()
        return int.from_bytes(mapped[:SIZE]) if mapped is not None else None

    def bump(self) -> None:
        """Write a value no reader holds. Random, not an increment: two processes bumping at
        once must not both write "old + 1" and leave a reader who saw the first one blind to
        the second, and a random 64-bit value repeats with odds no cache needs to consider."""
        mapped = self._mapped()
        if mapped is not None and self._writable:
            mapped[:SIZE] = secrets.randbits(64).to_bytes(SIZE)

    def _mapped(self) -> mmap.mmap | None:
        if self._map is None and not self._unavailable:
            try:
                self._map, self._writable = _open(self.path)
            except (OSError, ValueError) as exc:  # ValueError: a file shorter than the stamp
                self._unavailable = True
                logger.warning("index change stamp %s cannot be used (%s): every kept index "
                               "response is checked against the database", self.path, exc)
            else:
                if not self._writable:
                    logger.warning("index change stamp %s is read-only for this process: its "
                                   "index changes reach the web processes within a second, "
                                   "not at once", self.path)
        return self._map


def _open(path: Path) -> tuple[mmap.mmap, bool]:
    """Map the stamp, making it when missing. Read-only when the file belongs to another user
    (a command run as root): this process then relies on the others' writes and the bound."""
    try:
        fd, writable = os.open(path, os.O_RDWR | os.O_CREAT, 0o644), True
    except PermissionError:
        fd, writable = os.open(path, os.O_RDONLY), False
    try:
        if writable and os.fstat(fd).st_size < SIZE:
            # Real bytes, not a hole from ftruncate: a later write through the map must never
            # need a disk block it cannot get (a full disk would kill the process with SIGBUS).
            os.pwrite(fd, secrets.token_bytes(SIZE), 0)
        access = mmap.ACCESS_WRITE if writable else mmap.ACCESS_READ
        return mmap.mmap(fd, SIZE, access=access), writable
    finally:
        os.close(fd)


@functools.cache
def index_change_stamp() -> ChangeStamp:
    """The stamp of this installation's index, ``DATA_DIR/index-changes``."""
    from django.conf import settings

    return ChangeStamp(Path(settings.DATA_DIR) / "index-changes")
