"""Index changes made on other hosts, heard at once: PostgreSQL ``LISTEN/NOTIFY``.

Every committed index change rewrites this host's change stamp (``relatch.index.change_stamp``),
which sends every web process of the host back to the database for the pages it keeps. A
change committed by another host sharing the database does not touch this host's file, so it
used to show only once a kept answer's last check was ``response_cache.TRUST_SECONDS`` old.

Now each change also sends ``NOTIFY relatch_index_changes`` (``notify_other_hosts``) in the
transaction that makes it. PostgreSQL delivers a notification only when its transaction
commits, and drops it on a rollback, so a host hears of a change exactly when it can read it:
never before (a process that re-read early would keep the old page under the new stamp), and
never for a change that did not happen. On receipt the listener bumps the host's stamp, and the
next request in every web process of the host reads the page's marker again.

One listener per web process, not one per host. One per host would need an election between
the host's processes (a lock file), and every other process would have to learn through shared
memory whether the elected one is connected right now; a listener in each process knows its
own state, dies and restarts with its process, and costs one idle PostgreSQL connection per web
process (``relatch serve`` runs one web process, or 2 × CPUs + 1 with Redis). A notification is
then heard once per process, and each bump sends the host's processes back to the database
once more for the pages they keep: a handful of one-row reads per change.

While the listener is not connected (PostgreSQL restarting, the connection killed, the network
down) nothing changes for the kept answers: they are trusted at most ``TRUST_SECONDS`` after
their last check, as before there was a listener, so other hosts' changes show within that
bound. The listener says so once in the log, retries with a growing pause (at most
``MAX_BACKOFF`` seconds), and on reconnecting bumps the stamp, since changes made while it was
away were not heard.

SQLite is one machine: nothing is sent or heard there, and the stamp does it all. Redis
publish/subscribe is not used even when RELATCH_REDIS_URL is set: several hosts can only share
a PostgreSQL database, which carries the notification already, inside the transaction, where a
message to Redis would be sent after the commit and lost with a process killed in between.

The listener starts in gunicorn's web processes only (``start_in_web_process``, from the index
app's ``ready``): management commands, the background worker and tests serve no kept answers.
"""

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

import psycopg
from django.db import connection, connections

from relatch.index.change_stamp import ChangeStamp, index_change_stamp

logger = logging.getLogger(__name__)

CHANNEL = "relatch_index_changes"
APPLICATION_NAME = "relatch index change listener"
# How long the listener waits for a notification before asking the server whether its
# connection still lives ("SELECT 1"): a connection the server closed while nothing was sent
# (a killed backend, a restart) is noticed within this, not at the next change.
HEARTBEAT_SECONDS = 10.0
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 30.0
# TCP keepalives, so a connection to a host that vanished (no reset ever arrives) fails within
# about half a minute instead of the kernel's two hours.
_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
               "keepalives_count": 3, "connect_timeout": 10}


def notify_other_hosts() -> None:
    """Tell every listening web process, on every host, that the index changed. Call in the
    change's transaction: the notification is delivered when it commits, and not at all if it
    rolls back. Several in one transaction are delivered as one. Nothing on SQLite."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, '')", [CHANNEL])


def connection_params() -> dict[str, Any]:
    """psycopg's connection arguments for the default database, as Django would connect."""
    params = dict(connections["default"].get_connection_params())
    params.pop("cursor_factory", None)  # Django's cursor class; the listener runs plain SQL
    # Named in pg_stat_activity, with its process, for an operator (or a test) looking for it.
    return {**params, **_KEEPALIVES, "application_name": f"{APPLICATION_NAME} {os.getpid()}"}


class ChangeListener:
    """A daemon thread holding ``LISTEN relatch_index_changes`` on a connection of its own and
    bumping ``stamp`` on every notification, and once on every (re)connection."""

    def __init__(self, *, params: dict[str, Any], stamp: ChangeStamp,
                 heartbeat: float = HEARTBEAT_SECONDS,
                 connect: Callable[..., psycopg.Connection[Any]] = psycopg.connect) -> None:
        self.params, self.stamp, self.heartbeat, self._connect = params, stamp, heartbeat, connect
        self.connected = threading.Event()
        self.connections_made = 0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._outage_logged = False

    def start(self) -> None:
        """Listen from a daemon thread (it never holds a process's exit)."""
        self._thread = threading.Thread(target=self._run, name="relatch-index-changes",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop listening; returns once the thread has ended (within a heartbeat)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        backoff = FIRST_BACKOFF
        while not self._stopping.is_set():
            try:
                with self._connect(**self.params, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._listening()
                    backoff = FIRST_BACKOFF
                    self._hear(conn)
            except psycopg.Error as exc:
                self._lost(exc)
            except Exception:  # a bug must not end the thread silently and for good
                self.connected.clear()
                logger.exception("the index change listener failed; restarting it")
            if self._stopping.wait(backoff):
                break
            backoff = min(backoff * 2, MAX_BACKOFF)
        self.connected.clear()

    def _listening(self) -> None:
        # Changes committed while this process was not listening were never heard: the
        # stamp moves once now, so kept answers are checked again.
        self.stamp.bump()
        self.connections_made += 1
        self.connected.set()
        if self._outage_logged:
            logger.info("listening for index changes from other hosts again")
            self._outage_logged = False
        else:
            logger.info("listening for index changes from other hosts (pid %d)", os.getpid())

    def _hear(self, conn: psycopg.Connection[Any]) -> None:
        while not self._stopping.is_set():
            for _notice in conn.notifies(timeout=self.heartbeat):
                self.stamp.bump()
            conn.execute("SELECT 1")  # raises on a connection the server has closed

    def _lost(self, exc: psycopg.Error) -> None:
        self.connected.clear()
        if not self._outage_logged and not self._stopping.is_set():
            # Once per outage, not once per retry: a long database outage must not fill the log.
            logger.warning("not listening for index changes from other hosts (%s); they show "
                           "within a second until the listener reconnects", _first_line(exc))
            self._outage_logged = True


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


_listener: ChangeListener | None = None


def serves_web_requests() -> bool:
    """Whether this process is one of gunicorn's web processes: gunicorn's master sets
    SERVER_SOFTWARE in its environment, which its workers inherit; ``relatch`` commands and the
    background worker, started beside it, do not have it."""
    return os.environ.get("SERVER_SOFTWARE", "").startswith("gunicorn/")


def start_in_web_process() -> ChangeListener | None:
    """Start this process's listener when it is a web process on PostgreSQL (once)."""
    global _listener
    if _listener is not None or not serves_web_requests() or connection.vendor != "postgresql":
        return _listener
    _listener = ChangeListener(params=connection_params(), stamp=index_change_stamp())
    _listener.start()
    return _listener


def _restart_after_fork() -> None:
    # A forked child has no copy of the parent's thread (gunicorn with --preload forks its
    # workers after the application, and this, were loaded): it needs a listener of its own.
    # The parent's connection object is left alone: psycopg never closes a connection in a
    # process that did not open it.
    global _listener
    if _listener is not None:
        _listener = None
        start_in_web_process()


os.register_at_fork(after_in_child=_restart_after_fork)
