"""``relatch staff_token USERNAME --name NAME [--days N]``: a token for the desk's JSON API."""

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from relatch.accounts.models import User
from relatch.index.models import APIToken
from relatch.index.tokens.services import TokenError, create_token
from relatch.mfa.policy import SecondFactorRequiredError


class Command(BaseCommand):
    help = "Make a staff-scoped API token for the recovery desk's JSON API; it is shown once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", required=True, help="where the token will be used")
        parser.add_argument("--days", type=int, default=90, help="days until it expires")

    def handle(self, *args: Any, username: str, name: str, days: int, **options: Any) -> None:
        user = User.objects.filter(username__iexact=username, is_active=True).first()
        if user is None:
            raise CommandError(f"no active account named {username}")
        if not 1 <= days <= 365:
            raise CommandError("--days must be between 1 and 365")
        try:
            with transaction.atomic():
                _row, text = create_token(
                    request=None, user=user, name=name, project=None,
                    expires_at=timezone.now() + timedelta(days=days),
                    purpose=APIToken.Purpose.STAFF,
                )
        except (TokenError, SecondFactorRequiredError) as error:
            raise CommandError(error.message) from error
        self.stdout.write(f"{text}\nShown once: keep it in your secret store.")
