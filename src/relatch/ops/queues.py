"""The task and mail queues as operators see them: how much waits, for how long, what fails.
Each read uses a partial index of the queue's own (ready tasks; pending or given-up mail), so
it costs the same with ten or ten million finished rows beside them."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Min
from django.tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult, get_date_max

from relatch.notify.models import Outcome, OutgoingEmail


@dataclass(frozen=True)
class DueTasks:
    count: int
    oldest_age: float  # seconds the longest-waiting due task has waited (0: none)


@dataclass(frozen=True)
class MailQueue:
    pending: int  # not yet sent and not given up
    failing: int  # of those, the ones whose last attempt failed (waiting for a retry)
    given_up: int  # every message ever given up
    last_outcome: str  # what the latest failed attempt met ("Mail server unreachable")


def due_tasks(now: datetime) -> DueTasks:
    """Tasks ready to run now (not those queued for later, such as the next recovery tick)."""
    ready = DBTaskResult.objects.filter(status=TaskResultStatus.READY)
    # django-tasks-db stores "as soon as possible" as the largest date: those count from
    # their queueing, the others from when they became due.
    asap = ready.filter(run_after=get_date_max()).aggregate(n=Count("pk"),
                                                            oldest=Min("enqueued_at"))
    timed = ready.filter(run_after__lte=now).aggregate(n=Count("pk"), oldest=Min("run_after"))
    starts = [t for t in (asap["oldest"], timed["oldest"]) if t is not None]
    age = max(0.0, (now - min(starts)).total_seconds()) if starts else 0.0
    return DueTasks(asap["n"] + timed["n"], age)


def ready_tasks() -> int:
    """Tasks waiting, due now or queued for later. (Not those running: only ready tasks have
    an index, and finished tasks are kept, so counting any other state reads the whole table.)
    """
    return DBTaskResult.objects.filter(status=TaskResultStatus.READY).count()


def mail_queue() -> MailQueue:
    pending = OutgoingEmail.objects.filter(status=OutgoingEmail.Status.PENDING)
    failed = pending.exclude(last_outcome__in=["", Outcome.SENT])
    # The outcome's label, not the server's text: that may name a recipient's address.
    last = failed.order_by("-last_attempt_at").values_list("last_outcome", flat=True).first()
    return MailQueue(
        pending=pending.count(),
        failing=failed.count(),
        given_up=OutgoingEmail.objects.filter(status=OutgoingEmail.Status.FAILED).count(),
        last_outcome=Outcome(last).label if last else "",
    )
