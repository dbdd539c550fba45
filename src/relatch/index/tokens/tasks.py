"""The daily unused-token rule as a background task, queued by the recovery tick (the one
periodic task: ``relatch.recovery.tasks``); ``relatch disable_unused_tokens`` runs one by
hand."""

from dataclasses import asdict
from typing import Any

from django.tasks import task

from relatch.accounts.daily import ensure_daily
from relatch.index.tokens.unused import disable_unused_tokens


@task()
def unused_token_pass() -> dict[str, Any]:
    """One pass; its counts go into the task's result row."""
    return asdict(disable_unused_tokens())


def ensure_unused_token_pass_scheduled() -> bool:
    """Queue a pass a day from now unless one is waiting; whether one was queued."""
    return ensure_daily(unused_token_pass)
