"""The background worker that waits out a database outage instead of exiting (issue 18 §1).

``django_tasks_db``'s ``db_worker`` lets every database error out of its loop except SQLite's
"database is locked": a PostgreSQL restart ("terminating connection due to administrator
command", then "connection refused" while it is down) ends the process. The claim of the next
task raises ``OperationalError``; a task interrupted by the outage fails too, and recording
that failure raises again from inside ``run_task``. ``SteadyWorker`` catches those errors
around the library's loop, closes the broken connections, waits for the database with
back-off (one log line when the outage starts, one when it ends) and runs the loop again.

A task the outage interrupted stays ``running`` under this worker's id; no other start would
release it (this worker is alive), so the worker puts it back in the queue itself. Tasks are
at least once: a mail whose delivery was cut after the SMTP server took it may go twice.
"""

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, connections
from django.tasks import TaskResultStatus
from django.utils.module_loading import import_string
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult

from relatch.notify.leftovers import release_stranded_tasks, sweep_stranded_mail
from relatch.web.health.heartbeat import start_heartbeat

logger = logging.getLogger(__name__)

DATABASE_DOWN = (OperationalError, InterfaceError)
FIRST_WAIT = 0.5  # seconds before the first reconnection attempt
LONGEST_WAIT = 10.0  # a recovered database is noticed within this


class SteadyWorker(Worker):
    """``db_worker``'s loop, run again after every database outage instead of exiting."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.outages = 0

    def run(self) -> None:
        """Pick up what a dead worker left, then run tasks until stopped; a database error
        anywhere in that is an outage to wait out, never a reason to exit."""
        start_heartbeat(lambda: self.running)  # read by /health/ready (relatch.web.health)
        start_housekeeping(lambda: self.running)
        picked_up = False
        down_since: float | None = None
        while self.running:
            try:
                if not picked_up:
                    _pick_up_leftovers()
                    picked_up = True
                if down_since is not None:
                    self._resume(down_since)
                    down_since = None
                super().run()
                return
            except DATABASE_DOWN as exc:
                if down_since is None:  # one line per outage, however often it flaps
                    down_since = time.monotonic()
                    self.outages += 1
                    logger.warning("Database unavailable (%s: %s); the worker waits for it and "
                                   "retries with back-off", type(exc).__name__,
                                   str(exc).strip()[:200])
                self._wait_for_database()
            # The random start-up delay is for a herd of workers starting together, not for
            # one coming back from an outage.
            self.startup_delay = False

    def _wait_for_database(self) -> None:
        wait = FIRST_WAIT
        while self.running:
            _close_connections()
            time.sleep(wait)  # a TERM here ends the process (Worker.shutdown exits when idle)
            if _database_answers():
                return
            wait = min(wait * 2, LONGEST_WAIT)

    def _resume(self, down_since: float) -> None:
        requeued = _requeue_own_tasks(self.worker_id)
        logger.warning("Database available again after %.0f s; the worker resumes "
                       "(%d interrupted task(s) queued again)", time.monotonic() - down_since,
                       requeued)


def _pick_up_leftovers() -> None:
    """A restarted worker (the supervisor's, or systemd's) takes back the tasks its dead
    predecessor was running and the mail that lost its delivery task; the sweep's grace period
    keeps it from queueing mail a web request is about to queue itself."""
    release_stranded_tasks()
    sweep_stranded_mail()


def run_housekeeping() -> None:
    """Each of settings.WORKER_HOUSEKEEPING once; a failure is logged, the others still run."""
    for path in settings.WORKER_HOUSEKEEPING:
        try:
            import_string(path)()
        except Exception:
            logger.exception("Worker housekeeping %s failed; it runs again later", path)


def start_housekeeping(running: Callable[[], bool]) -> threading.Thread:
    """Run the housekeeping every WORKER_HOUSEKEEPING_SECONDS from a daemon thread.

    Why not only at start: with several hosts, a host that dies while its worker runs a task
    (the recovery desk's tick, a mail's delivery) leaves it ``running`` under a worker no
    other host can see. Without a periodic pass it stays so until some worker restarts; the
    tick would never queue its successor, and recovery waits, reminders and sweeps would stop.
    """

    def loop() -> None:
        while running():
            time.sleep(settings.WORKER_HOUSEKEEPING_SECONDS)
            if running():
                run_housekeeping()
                _close_connections()  # the thread's own: none is kept for minutes unused

    thread = threading.Thread(target=loop, name="worker-housekeeping", daemon=True)
    thread.start()
    return thread


def _close_connections() -> None:
    for connection in connections.all(initialized_only=True):
        try:
            connection.close()
        except DATABASE_DOWN:
            # Closing a connection the server already dropped can raise; it is gone anyway.
            connection.connection = None


def _database_answers() -> bool:
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
    except DATABASE_DOWN:
        return False
    return True


def _requeue_own_tasks(worker_id: str) -> int:
    """Put back in the queue the tasks this worker claimed and never finished: the outage cut
    them (the worker runs one task at a time, and none is running now)."""
    requeued = 0
    for task in DBTaskResult.objects.filter(status=TaskResultStatus.RUNNING):
        if task.worker_ids[-1:] != [worker_id]:
            continue
        requeued += DBTaskResult.objects.filter(
            pk=task.pk, status=TaskResultStatus.RUNNING
        ).update(status=TaskResultStatus.READY, started_at=None)
    return requeued
