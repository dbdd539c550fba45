"""``relatch disable_unused_tokens``: run the unused-token rule now (the worker runs it once a
day): revoke live tokens unused for RELATCH_TOKEN_UNUSED_DAYS and tell their owners."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from relatch.index.tokens.unused import disable_unused_tokens


class Command(BaseCommand):
    help = ("Disable API tokens unused for RELATCH_TOKEN_UNUSED_DAYS days, with a mail to "
            "their owners. The worker does this once a day.")

    def handle(self, *args: Any, **options: Any) -> None:
        result = disable_unused_tokens()
        if not result.enabled:
            self.stdout.write("The rule is off (RELATCH_TOKEN_UNUSED_DAYS is 0): nothing done.")
            return
        self.stdout.write(f"Disabled {result.disabled} of {result.checked} tokens unused for "
                          f"{settings.TOKEN_UNUSED_DAYS} days.")
