"""``relatch sendtestmail ADDRESS``: check the mail set-up from the command line."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from relatch.notify.services import send_mail


class Command(BaseCommand):
    help = "Queue a test message to ADDRESS (delivered by the worker)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("address")

    def handle(self, *args: Any, address: str, **options: Any) -> None:
        with transaction.atomic():
            send_mail(to=[address], template="test_message", context={"name": address})
        self.stdout.write(f"Queued a test message to {address}; the worker delivers it.")
