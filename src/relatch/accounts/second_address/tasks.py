"""The daily "add a second address" pass as a background task, queued by the recovery tick
(the one periodic task: ``relatch.recovery.tasks``); ``relatch send_account_reminders`` runs
one by hand."""

from dataclasses import asdict
from typing import Any

from django.tasks import task

from relatch.accounts.daily import ensure_daily
from relatch.accounts.second_address.services import remind_second_address


@task()
def second_address_reminders() -> dict[str, Any]:
    """One pass; its counts go into the task's result row."""
    return asdict(remind_second_address())


def ensure_second_address_reminders_scheduled() -> bool:
    """Queue a pass a day from now unless one is waiting; whether one was queued."""
    return ensure_daily(second_address_reminders)
