"""The writes of "add a second address": "Not now" on the banner, and the daily reminders."""

from datetime import datetime

from django.db import transaction
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
from relatch.accounts.second_address.queries import (
    DISMISS_FOR,
    REMIND_EVERY,
    accounts_in_scope,
    domain_of,
    due_for_reminder,
    is_custom_domain,
)
from relatch.notify.services import send_mail
from relatch.web.path_prefix import site_path

# At most this many reminders a day: an upgrade that finds many old single-address accounts
# spreads their mail over the following days instead of flooding the mail server at once.
DAILY_LIMIT = 10_000


@transaction.atomic
def dismiss_prompt(*, user: User) -> datetime:
    """"Not now": no banner and no reminder mail for a year; returns when they come back."""
    until = timezone.now() + DISMISS_FOR
    ensure_reminder_rows([user.pk])
    AccountReminders.objects.filter(user=user).update(second_address_dismissed_until=until)
    return until


def remind_second_address(
    *, limit: int = DAILY_LIMIT, batch_size: int = BATCH_SIZE
) -> DailyPass:
    """Mail every account that is due (one usable address, 90 days since it joined or was last
    reminded, not dismissed), walking the accounts in keyset batches by id, one transaction a
    batch. Run twice, the second pass sends nothing: each account is claimed by moving its
    ``second_address_reminded_at`` in the same transaction that queues its mail."""
    return mail_due_accounts(accounts=accounts_in_scope(), due=due_for_reminder, mail=_remind,
                             limit=limit, batch_size=batch_size)


@transaction.atomic
def _remind(user_ids: list[int], *, now: datetime, limit: int) -> int:
    ensure_reminder_rows(user_ids)
    users = User.objects.in_bulk(user_ids)
    sent = 0
    for pk in user_ids:
        if sent >= limit:
            break
        user = users[pk]
        addresses = verified_addresses(user)
        if len(addresses) == 1 and _claim(pk, now=now):
            _mail(user, addresses[0])
            sent += 1
    return sent


def _claim(user_id: int, *, now: datetime) -> bool:
    """Mark the account reminded now, unless it was reminded within 90 days or dismissed the
    prompt (a pass running at the same moment, or a "Not now" just clicked): at most one mail
    a period, whatever runs at once."""
    unclaimed = (
        AccountReminders.objects.filter(user_id=user_id)
        .exclude(second_address_reminded_at__gt=now - REMIND_EVERY)
        .exclude(second_address_dismissed_until__gt=now)
    )
    return unclaimed.update(second_address_reminded_at=now) == 1


def _mail(user: User, address: str) -> None:
    send_mail(
        to=[address],
        template="account_second_address",
        context={
            "username": user.username,
            "address": address,
            "domain": domain_of(address),
            "custom_domain": is_custom_domain(address),
            # Below the prefix: the template puts them after base_url, which ends with it.
            "emails_path": site_path(reverse("emails:manage")),
            "account_path": site_path(reverse("account:overview")),
            "every_days": REMIND_EVERY.days,
            "security_notice": False,
        },
    )
