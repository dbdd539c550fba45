"""``relatch demo``: seed sample accounts, a project with two releases and a recovery request."""

import secrets
from collections.abc import Callable
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.module_loading import import_string

from relatch.accounts.demo import DemoRun
from relatch.accounts.management.schema import bring_schema_up_to_date

# Run in order (the project needs alice and bob, the request carol); each is idempotent.
DEMO_STEPS = [
    "relatch.accounts.demo.seed_people",
    "relatch.index.demo.seed_projects",
    "relatch.recovery.demo.seed_request",
]


class Command(BaseCommand):
    help = (
        "Seed sample maintainers with verified addresses, a staff member, the project "
        "demo-hello (two releases) and a recovery request in the staff queue (idempotent)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--password", help="password of the accounts created (default: a random one)"
        )

    def handle(self, *args: Any, password: str | None = None, **options: Any) -> None:
        bring_schema_up_to_date()
        if password is not None:
            try:
                validate_password(password)
            except ValidationError as exc:
                raise CommandError("Password refused: " + " ".join(exc.messages)) from None
        run = DemoRun(password=password or secrets.token_urlsafe(12))
        for path in DEMO_STEPS:
            step: Callable[[DemoRun], None] = import_string(path)
            step(run)
        for note in run.notes:
            self.stdout.write(note)
        if not run.created:
            self.stdout.write("Nothing new: every demo account exists and keeps its password.")
        elif not run.accounts:
            self.stdout.write("No account was created: the demo accounts keep their password.")
        elif password is None:
            # Shown once and kept nowhere in clear: only the hashes are stored.
            self.stdout.write(f"Password of the accounts created now: {run.password}")
        else:
            self.stdout.write("The accounts created now use the password you gave.")
