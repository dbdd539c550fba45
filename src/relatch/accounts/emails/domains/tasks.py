"""The domain check as a background task, queued by the recovery tick (the one periodic task:
``relatch.recovery.tasks``), which asks for it every ten minutes.

A pass runs a day after the previous one was queued, or sooner when a failed lookup is due
for its retry (never sooner than an hour): a registry that timed out is asked again in an
hour, not a day. ``relatch check_email_domains`` runs a pass by hand.
"""

from datetime import datetime, timedelta
from typing import Any

from django.db.models import Min
from django.tasks import TaskResultStatus, task
from django.utils import timezone

from relatch.accounts.emails.domains.checks import run_domain_checks
from relatch.accounts.models import EmailDomain

PASS_EVERY = timedelta(days=1)
SOONEST_PASS = timedelta(hours=1)


@task()
def check_email_domains() -> dict[str, Any]:
    """One pass over the domains that are due; its counts go into the task's result row."""
    return run_domain_checks().summary()


def next_pass_at(now: datetime) -> datetime:
    """PASS_EVERY from ``now``, or the earliest retry of a failed lookup if that is sooner
    (but at least SOONEST_PASS from ``now``)."""
    retry = EmailDomain.objects.filter(failures__gt=0).aggregate(at=Min("next_check_at"))["at"]
    at = now + PASS_EVERY
    if retry is not None:
        at = min(at, max(retry, now + SOONEST_PASS))
    return at


def ensure_domain_check_scheduled(*, now: datetime | None = None) -> bool:
    """Queue a pass (at ``next_pass_at``) unless one is already waiting; return whether one
    was queued. Safe to call any number of times."""
    from django_tasks_db.models import DBTaskResult

    waiting = DBTaskResult.objects.filter(
        task_path=check_email_domains.module_path, status=TaskResultStatus.READY
    ).exists()
    if waiting:
        return False
    check_email_domains.using(run_after=next_pass_at(now or timezone.now())).enqueue()
    return True
