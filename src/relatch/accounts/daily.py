"""Daily background passes over every account (issue 17's reminders): queued once a day by
the recovery tick, walking the accounts in bounded batches (never every user at once, and
never an OFFSET that grows with the table)."""

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db.models import QuerySet
from django.tasks import Task, TaskResultStatus
from django.utils import timezone

from relatch.accounts.models import AccountReminders, User

BATCH_SIZE = 500
DAILY = timedelta(days=1)


@dataclass(frozen=True)
class DailyPass:
    """What one pass did: accounts looked at, accounts mailed, and whether it stopped at its
    daily limit (the rest are mailed on the following days)."""

    checked: int
    sent: int
    limited: bool = False


def ensure_daily(task: Task[Any, Any]) -> bool:
    """Queue ``task`` (no arguments) to run a day from now unless a run of it is already
    waiting, so it runs at most once a day; return whether one was queued. The recovery tick
    calls this every ten minutes; safe to call any number of times."""
    from django_tasks_db.models import DBTaskResult

    waiting = DBTaskResult.objects.filter(
        task_path=task.module_path, status=TaskResultStatus.READY
    ).exists()
    if waiting:
        return False
    task.using(run_after=timezone.now() + DAILY).enqueue()
    return True


def id_batches(accounts: QuerySet[User], *, size: int = BATCH_SIZE) -> Iterator[list[int]]:
    """The ids of ``accounts`` in ascending order, ``size`` at a time (keyset by id: each
    batch starts after the last id of the one before, so rows added or removed meanwhile
    neither repeat nor skip the others)."""
    after = 0
    while True:
        ids = list(
            accounts.filter(pk__gt=after).order_by("pk").values_list("pk", flat=True)[:size]
        )
        if ids:
            yield ids
        if len(ids) < size:
            return
        after = ids[-1]


def ensure_reminder_rows(user_ids: Iterable[int]) -> None:
    """Make sure each account has its AccountReminders row (made lazily, the first time one of
    the reminders looks at it); rows that exist are left as they are."""
    AccountReminders.objects.bulk_create(
        [AccountReminders(user_id=pk) for pk in user_ids], ignore_conflicts=True
    )


def mail_due_accounts(
    *,
    accounts: QuerySet[User],
    due: Callable[..., list[int]],
    mail: Callable[..., int],
    limit: int,
    batch_size: int = BATCH_SIZE,
) -> DailyPass:
    """One daily pass: walk ``accounts`` in keyset batches, keep the ids ``due(ids=, now=)``
    returns, and hand them to ``mail(ids, now=, limit=)``, which claims and mails them in one
    transaction a batch and returns how many it mailed; stop at ``limit`` mails."""
    now = timezone.now()
    checked = sent = 0
    for ids in id_batches(accounts, size=batch_size):
        checked += len(ids)
        if chosen := due(ids=ids, now=now):
            sent += mail(chosen, now=now, limit=limit - sent)
        if sent >= limit:
            return DailyPass(checked=checked, sent=sent, limited=True)
    return DailyPass(checked=checked, sent=sent)
