"""The daily ask to confirm recovery information as a background task, queued by the recovery
tick (the one periodic task: ``relatch.recovery.tasks``); ``relatch send_account_reminders``
runs one by hand."""

from dataclasses import asdict
from typing import Any

from django.tasks import task

from relatch.accounts.daily import ensure_daily
from relatch.mfa.yearly_check.services import ask_due_accounts


@task()
def recovery_info_checks() -> dict[str, Any]:
    """One pass; its counts go into the task's result row."""
    return asdict(ask_due_accounts())


def ensure_recovery_info_checks_scheduled() -> bool:
    """Queue a pass a day from now unless one is waiting; whether one was queued."""
    return ensure_daily(recovery_info_checks)
