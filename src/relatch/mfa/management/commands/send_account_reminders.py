"""``relatch send_account_reminders``: run the daily reminder passes now (issue 17): "add a
second address" to accounts with one address, every 90 days, and the yearly ask to confirm
recovery information to accounts with a second factor. The worker runs both once a day by
itself (the recovery tick queues them); a pass sends nothing to an account already reminded
in its period, so running it by hand never sends a mail twice."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from relatch.accounts.daily import DailyPass
from relatch.accounts.second_address.services import DAILY_LIMIT, remind_second_address
from relatch.mfa.yearly_check.services import ask_due_accounts


class Command(BaseCommand):
    help = (
        "Mail the reminders that are due now: add a second address (every 90 days) and "
        "confirm recovery information (every 12 months). The worker does this once a day."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--limit", type=int, default=DAILY_LIMIT,
                            help=f"at most this many mails of each kind (default {DAILY_LIMIT})")

    def handle(self, *args: Any, limit: int = DAILY_LIMIT, **options: Any) -> None:
        if limit < 1:
            raise CommandError("--limit must be at least 1.")
        self.stdout.write(_line("Second address", remind_second_address(limit=limit)))
        self.stdout.write(_line("Recovery information", ask_due_accounts(limit=limit)))


def _line(label: str, result: DailyPass) -> str:
    rest = " Stopped at the limit: the rest follow on the next run." if result.limited else ""
    return f"{label}: checked {result.checked} accounts, mailed {result.sent}.{rest}"
