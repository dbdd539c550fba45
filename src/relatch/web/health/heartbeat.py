"""The background worker's heartbeat: a file in the data directory whose modification time
the worker renews every BEAT_EVERY seconds while it runs, and /health/ready reads.

A file, not a row: it needs no migration and no database (a worker waiting out a database
outage is alive, and says so), and the data directory is what the web server and the worker
of one ``relatch serve`` share. Each host's readiness therefore reports its own worker.
The beat comes from a thread of the worker's, so it says the process lives and has not been
told to stop; whether it keeps up with its tasks is the queue's age (relatch.ops.checks).
"""

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)

BEAT_EVERY = 10.0  # seconds


def heartbeat_path() -> Path:
    return Path(settings.DATA_DIR) / "worker.heartbeat"


def beat() -> None:
    """Renew the heartbeat now."""
    path = heartbeat_path()
    try:
        path.touch()  # sets the modification time to now, making the file the first time
    except OSError as exc:  # a full or read-only disk must not stop the worker's tasks
        logger.warning("Cannot write the worker heartbeat %s: %s", path, exc.strerror)


def last_beat() -> float | None:
    """When a worker on this host last beat (a Unix time); None if none ever did."""
    try:
        return heartbeat_path().stat().st_mtime
    except FileNotFoundError:
        return None


def start_heartbeat(running: Callable[[], bool]) -> threading.Thread:
    """Beat every BEAT_EVERY seconds from a daemon thread while ``running()`` holds."""

    def loop() -> None:
        while running():
            beat()
            time.sleep(BEAT_EVERY)

    thread = threading.Thread(target=loop, name="worker-heartbeat", daemon=True)
    thread.start()
    return thread
