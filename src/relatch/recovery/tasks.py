"""The recovery tick: a background task that does one housekeeping pass and queues the next.

The schedule lives in the task queue's database table, so it survives a restart of the
server or the worker: each tick queues its successor (``run_after`` = now + TICK_EVERY) before
it ends, even when its pass failed. Operators start the chain once with
``relatch recovery_tick`` (idempotent: it runs a pass now and queues a tick only when none is
waiting).
"""

from dataclasses import asdict
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.tasks import task
from django.utils import timezone

TICK_EVERY: timedelta = getattr(settings, "RECOVERY_TICK_EVERY", timedelta(minutes=10))


@task()
def recovery_tick() -> dict[str, Any]:
    """One pass of ``relatch.recovery.housekeeping.run_pass``, a sweep for mail that lost its
    delivery task and for delivery attempts kept long enough, the daily orphan-file sweep, the
    daily email domain check and the daily account reminders (issue 17) queued if none is (the
    tick is the only periodic task), then the next tick."""
    from relatch.accounts.emails.domains.tasks import ensure_domain_check_scheduled
    from relatch.accounts.second_address.tasks import ensure_second_address_reminders_scheduled
    from relatch.index.tokens.tasks import ensure_unused_token_pass_scheduled
    from relatch.index.upload.tasks import ensure_sweep_scheduled
    from relatch.mfa.yearly_check.tasks import ensure_recovery_info_checks_scheduled
    from relatch.notify.leftovers import prune_delivery_attempts, sweep_stranded_mail
    from relatch.recovery.housekeeping import run_pass

    try:
        report = asdict(run_pass())
        report["mail_requeued"] = sweep_stranded_mail()
        report["delivery_attempts_pruned"] = prune_delivery_attempts()
        report["orphan_sweep_queued"] = ensure_sweep_scheduled()
        report["domain_check_queued"] = ensure_domain_check_scheduled()
        report["second_address_reminders_queued"] = ensure_second_address_reminders_scheduled()
        report["recovery_info_checks_queued"] = ensure_recovery_info_checks_scheduled()
        report["unused_token_pass_queued"] = ensure_unused_token_pass_scheduled()
        return report
    finally:
        ensure_tick_scheduled()


def tick_is_waiting() -> bool:
    """Whether a tick is already queued (ready or scheduled for later)."""
    from django.tasks import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    return DBTaskResult.objects.filter(
        task_path=recovery_tick.module_path, status=TaskResultStatus.READY
    ).exists()


def ensure_tick_scheduled(*, delay: timedelta | None = None) -> bool:
    """Queue a tick ``delay`` from now (default TICK_EVERY) unless one is already waiting;
    return whether one was queued. Safe to call any number of times."""
    if tick_is_waiting():
        return False
    run_after = timezone.now() + (TICK_EVERY if delay is None else delay)
    recovery_tick.using(run_after=run_after).enqueue()
    return True
