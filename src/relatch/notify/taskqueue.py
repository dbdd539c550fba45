"""The delivery tasks in the task queue's table: queueing them, finding them, moving them.

django-tasks-db keeps each task as a row (``DBTaskResult``); a delivery task's one positional
argument is its OutgoingEmail's id. The tasks module is imported inside the functions: it
imports the services, which import this module.
"""

from collections.abc import Iterable
from datetime import datetime, timedelta
from itertools import batched

from django.tasks import TaskResultStatus
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

_BATCH = 500  # ids per statement: well under every database's limit on parameters


def _deliver_task_path() -> str:
    from relatch.notify.tasks import deliver_email

    return deliver_email.module_path


def enqueue_delivery(ids: Iterable[int], delay: timedelta | None = None) -> None:
    """Queue one delivery task per OutgoingEmail id (after ``delay``, if given)."""
    from relatch.notify.tasks import deliver_email

    task = deliver_email.using(run_after=timezone.now() + delay) if delay else deliver_email
    for outgoing_id in ids:
        task.enqueue(outgoing_id)


def _message_id(args_kwargs: object) -> int | None:
    args = args_kwargs.get("args", []) if isinstance(args_kwargs, dict) else []
    first = args[0] if args else None
    return first if isinstance(first, int) else None


def mail_with_a_task() -> set[int]:
    """The ids of the messages a waiting or running delivery task will send."""
    waiting = DBTaskResult.objects.filter(
        task_path=_deliver_task_path(),
        status__in=[TaskResultStatus.READY, TaskResultStatus.RUNNING],
    ).values_list("args_kwargs", flat=True)
    return {found for args_kwargs in waiting if (found := _message_id(args_kwargs)) is not None}


def run_deliveries_now(message_ids: set[int], *, now: datetime) -> set[int]:
    """Make the waiting delivery tasks of ``message_ids`` due at ``now``; the ids of the
    messages whose task was moved (the others have a task due already, or none)."""
    later = DBTaskResult.objects.filter(
        task_path=_deliver_task_path(), status=TaskResultStatus.READY, run_after__gt=now
    ).values_list("pk", "args_kwargs")
    tasks = {pk: found for pk, args_kwargs in later
             if (found := _message_id(args_kwargs)) is not None and found in message_ids}
    for chunk in batched(tasks, _BATCH):
        # Only if still waiting: a worker that claimed one meanwhile runs it anyway.
        DBTaskResult.objects.filter(pk__in=chunk, status=TaskResultStatus.READY).update(
            run_after=now
        )
    return set(tasks.values())
