"""The metrics directory ``relatch serve`` prepares for its processes, and the gunicorn hook
that tells prometheus-client a web process died (see relatch.ops for the design).

Loaded by gunicorn's master as a configuration module (``-c python:relatch.ops.processes``):
it imports nothing from Django, and defines no setting but the hook.
"""

import os
import shutil
from pathlib import Path
from typing import Any

from prometheus_client import multiprocess

ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_metrics_dir(data_dir: Path) -> Path:
    """An empty ``<data dir>/metrics``, named in the environment the children inherit.

    Emptied at each start: files from a previous run belong to processes long gone, and
    summed with this run's they would count requests twice after a restart of the host
    (prometheus-client reads the pid in a file's name, and pids are reused)."""
    directory = data_dir / "metrics"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(mode=0o700, parents=True)
    os.environ[ENV] = str(directory)
    return directory


def child_exit(server: Any, worker: Any) -> None:
    """gunicorn server hook: a web process exited (restarted by gunicorn, or stopped)."""
    if os.environ.get(ENV):
        multiprocess.mark_process_dead(worker.pid)
