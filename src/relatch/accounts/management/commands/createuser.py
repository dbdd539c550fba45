"""``relatch createuser USERNAME --email ADDR``: an account made by an operator, for indexes
whose sign-up is closed (RELATCH_SIGNUP=closed) or for people outside RELATCH_SIGNUP_DOMAINS."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import IntegrityError

from relatch.accounts.management.commands.createstaff import checked_identity
from relatch.accounts.management.schema import bring_schema_up_to_date
from relatch.accounts.registration.operators import create_account_for


class Command(BaseCommand):
    help = (
        "Create an account with a verified address and no password, and mail that address a "
        "link to choose one. Works whatever RELATCH_SIGNUP says: you vouch for the address."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--email", required=True, help="verified at once: you vouch for it")
        parser.add_argument("--name", default="", help="the person's name (optional)")

    def handle(self, *args: Any, **options: Any) -> None:
        bring_schema_up_to_date()
        username, address, name = checked_identity(options)
        try:
            create_account_for(username=username, email=address, name=name)
        except IntegrityError:  # created by someone else between the checks and now
            raise CommandError(f"{username!r} or {address} was taken just now.") from None
        self.stdout.write(
            f"Created account {username!r} with verified address {address}; a link to choose "
            "its password is on its way there."
        )
