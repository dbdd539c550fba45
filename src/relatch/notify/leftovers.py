"""Background work a crash left behind, picked up again when a server or worker starts.

Two moments of a crash (``kill -9``, power loss, the OOM killer) strand work for ever:

- between the commit that wrote an OutgoingEmail row and the on-commit callback that queues
  its delivery: the row is pending and no task will ever send it (a reset link never arrives);
- while the worker runs a task: the task row stays ``running``, and no worker takes it again.

Every worker is started with an id naming its host, process id and the process's start time,
so a later start on the same host can tell a task claimed by a worker that is gone from one a
live worker is still running (a process id alone may have been reused). A task claimed on
another host is judged by age alone: after STALE_AFTER no delivery can still be running (the
SMTP timeout is seconds).

Delivery is at least once: a worker killed after the SMTP server accepted a message but before
it marked it sent sends it again. A duplicate mail is better than a lost reset link.
"""

import logging
import os
import socket
from datetime import datetime, timedelta
from pathlib import Path

from django.db import transaction
from django.db.models import Q
from django.tasks import TaskResultStatus
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from relatch.notify.models import DeliveryAttempt, OutgoingEmail
from relatch.notify.taskqueue import enqueue_delivery, mail_with_a_task

logger = logging.getLogger(__name__)

STALE_AFTER = timedelta(hours=1)
ATTEMPTS_KEPT_FOR = timedelta(days=30)
_PRUNE_BATCH = 900  # ids per DELETE: under SQLite's old limit of 999 parameters
SWEEP_GRACE = timedelta(minutes=5)
_HOST_CHARS = 30  # db_worker refuses ids of 64 characters or more


def _host() -> str:
    return socket.gethostname()[:_HOST_CHARS]


def _start_ticks(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux); "" when there is no such
    process, or only its corpse: a killed worker whose parent died too stays a zombie until
    something reaps it (in a container, maybe never), and a zombie runs no task."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return ""
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return ""
    return fields[19]


def worker_id(pid: int | None = None) -> str:
    """The id a worker process runs under: ``host:pid:start-ticks``."""
    pid = os.getpid() if pid is None else pid
    return f"{_host()}:{pid}:{_start_ticks(pid)}"


def _worker_is_gone(worker: str) -> bool | None:
    """True/False for a worker of this host; None when it cannot be told (another host, an id
    not made by ``worker_id``)."""
    host, _, rest = worker.partition(":")
    pid, _, ticks = rest.partition(":")
    if host != _host() or not pid.isdigit():
        return None
    if ticks:
        return _start_ticks(int(pid)) != ticks
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _stranded(task: DBTaskResult, now: datetime) -> bool:
    gone = _worker_is_gone(task.worker_ids[-1]) if task.worker_ids else None
    if gone is not None:
        return gone
    return task.started_at is None or task.started_at < now - STALE_AFTER


def release_stranded_tasks(*, now: datetime | None = None) -> int:
    """Put tasks whose worker died while running them back in the queue; return how many."""
    now = now or timezone.now()
    released = 0
    for task in DBTaskResult.objects.filter(status=TaskResultStatus.RUNNING):
        if not _stranded(task, now):
            continue
        # Only if still running: a worker that finished it meanwhile has the last word.
        released += DBTaskResult.objects.filter(
            pk=task.pk, status=TaskResultStatus.RUNNING
        ).update(status=TaskResultStatus.READY, started_at=None)
        logger.warning("Task %s (%s) was left running by a stopped worker; queued again",
                       task.pk, task.task_path)
    return released


def queue_unqueued_mail(*, older_than: timedelta | None = None) -> int:
    """Queue delivery of pending mail that no waiting or running task will send.

    ``older_than``: only mail written at least that long ago. A sweep while the server runs
    passes it, because a row committed a moment ago may still wait for its on-commit callback
    to queue it (sweeping it too would send it twice).
    """
    rows = OutgoingEmail.objects.filter(status=OutgoingEmail.Status.PENDING)
    if older_than is not None:
        rows = rows.filter(created_at__lt=timezone.now() - older_than)
    pending = set(rows.values_list("pk", flat=True))
    lost = sorted(pending - mail_with_a_task())
    if lost:
        logger.warning("Queueing %d pending mail(s) that had no delivery task", len(lost))
        enqueue_delivery(lost)
    return len(lost)


def sweep_stranded_mail() -> int:
    """While the server runs (the recovery tick, every few minutes): queue pending mail that
    lost its task, e.g. when gunicorn killed a web worker right after its commit."""
    return queue_unqueued_mail(older_than=SWEEP_GRACE)


def prune_delivery_attempts(*, now: datetime | None = None, batches: int = 20) -> int:
    """Delete the attempts of messages sent or given up more than ATTEMPTS_KEPT_FOR ago
    (the message keeps its status, times and last error); return how many.

    Run by the recovery tick. Bounded per pass (``batches`` statements), so the first pass
    after a long outage does not hold the table for long; the next passes take the rest.
    """
    before = (now or timezone.now()) - ATTEMPTS_KEPT_FOR
    settled = Q(message__status=OutgoingEmail.Status.SENT, message__sent_at__lt=before) | Q(
        message__status=OutgoingEmail.Status.FAILED, message__gave_up_at__lt=before
    )
    deleted = 0
    for _ in range(batches):
        chunk = list(DeliveryAttempt.objects.filter(settled).values_list("pk", flat=True)[
            :_PRUNE_BATCH
        ])
        if not chunk:
            break
        deleted += DeliveryAttempt.objects.filter(pk__in=chunk).delete()[0]
    return deleted


@transaction.atomic
def resume_background_work() -> tuple[int, int]:
    """Release stranded tasks, then queue stranded mail; (tasks released, mail queued).

    Run at every start of ``relatch serve`` and ``relatch worker``, before the worker polls.
    """
    return release_stranded_tasks(), queue_unqueued_mail()
