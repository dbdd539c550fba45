"""The recovery pass is queued when the worker starts, once, and survives restarts."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.serving import relatch_env

pytestmark = [pytest.mark.slow, pytest.mark.own_database]
RELATCH = Path(sys.executable).with_name("relatch")

COUNT = (
    "from django_tasks_db.models import DBTaskResult; "
    "print('TICKS', DBTaskResult.objects.filter(task_path__endswith='recovery_tick', "
    "status='READY').count())"
)


def run(data_dir: Path, *args: str) -> str:
    done = subprocess.run([str(RELATCH), *args], env=relatch_env(data_dir), capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_starting_the_worker_twice_queues_one_tick(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run(data, "migrate", "--verbosity", "0")
    for _ in range(2):  # a worker that runs what is ready (the first tick), then exits
        subprocess.run([str(RELATCH), "worker", "--batch"], env=relatch_env(data),
                       capture_output=True, text=True, timeout=120, check=False)
    assert "TICKS 1" in run(data, "shell", "-c", COUNT)
