"""The writes of the yearly confirmation: the daily pass that asks, and the one-click answer."""

from datetime import datetime

from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from relatch.accounts.daily import (
    BATCH_SIZE,
    DailyPass,
    ensure_reminder_rows,
    mail_due_accounts,
)
from relatch.accounts.models import AccountReminders, User
from relatch.accounts.notices import verified_addresses
from relatch.audit.models import EventKind
from relatch.audit.services import record_event
from relatch.mfa.queries import factor_summary
from relatch.mfa.yearly_check.queries import ASK_EVERY, accounts_in_scope, due_for_check
from relatch.notify.services import send_mail
from relatch.web.path_prefix import site_path

# At most this many asks a day (see relatch.accounts.second_address.services.DAILY_LIMIT).
DAILY_LIMIT = 10_000


@transaction.atomic
def confirm_recovery_info(*, request: HttpRequest | None, user: User) -> datetime:
    """"This is all still right": the account is not asked again for 12 months. Recorded in
    the security history with what was confirmed (counts only)."""
    now = timezone.now()
    ensure_reminder_rows([user.pk])
    AccountReminders.objects.filter(user=user).update(recovery_info_confirmed_at=now)
    factors = factor_summary(user=user)
    record_event(
        user=user,
        kind=EventKind.RECOVERY_INFO_CONFIRMED,
        request=request,
        details={
            "addresses": len(verified_addresses(user)),
            "second_factors": factors.second_factor_count,
            "codes_left": factors.codes.unused if factors.codes else 0,
        },
    )
    return now


def ask_due_accounts(*, limit: int = DAILY_LIMIT, batch_size: int = BATCH_SIZE) -> DailyPass:
    """Mail every account that is due (see ``queries.due_for_check``), walking the accounts
    with a second factor in keyset batches by id, one transaction a batch. A second pass the
    same day sends nothing: each account is claimed by moving its ``recovery_info_asked_at``
    in the transaction that queues its mail."""
    return mail_due_accounts(accounts=accounts_in_scope(), due=due_for_check, mail=_ask,
                             limit=limit, batch_size=batch_size)


@transaction.atomic
def _ask(user_ids: list[int], *, now: datetime, limit: int) -> int:
    ensure_reminder_rows(user_ids)
    users = User.objects.in_bulk(user_ids)
    sent = 0
    for pk in user_ids:
        if sent >= limit:
            break
        if _claim(pk, now=now):
            _mail(users[pk])
            sent += 1
    return sent


def _claim(user_id: int, *, now: datetime) -> bool:
    """Mark the account asked now, unless it was asked or confirmed within 12 months (by a
    pass running at the same moment, or a click just now): at most one ask a period."""
    cutoff = now - ASK_EVERY
    unclaimed = (
        AccountReminders.objects.filter(user_id=user_id)
        .exclude(recovery_info_asked_at__gt=cutoff)
        .exclude(recovery_info_confirmed_at__gt=cutoff)
    )
    return unclaimed.update(recovery_info_asked_at=now) == 1


def _mail(user: User) -> None:
    addresses = verified_addresses(user)
    factors = factor_summary(user=user)
    send_mail(
        to=addresses,
        template="account_recovery_info_check",
        context={
            "username": user.username,
            "addresses": addresses,
            "has_app": factors.app is not None,
            "key_labels": [key.label for key in factors.keys],
            "codes_unused": factors.codes.unused if factors.codes else None,
            "codes_total": factors.codes.total if factors.codes else None,
            # Below the prefix: the template puts it after base_url, which ends with it.
            "check_path": site_path(reverse("recovery_info:check")),
            "security_notice": False,
        },
    )
