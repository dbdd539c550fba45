"""``relatch createstaff``: a staff account with a verified address, from the command line."""

import getpass
import secrets
import sys
from typing import Any, TextIO

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import IntegrityError

from relatch.accounts.emails.services import EmailChangeError, normalize_address
from relatch.accounts.management.schema import bring_schema_up_to_date
from relatch.accounts.models import Email, User
from relatch.accounts.provisioning import create_verified_user
from relatch.accounts.usernames import is_username_taken, validate_username_format

MAX_NAME_LENGTH = User._meta.get_field("name").max_length or 100


def _check_username(username: str) -> None:
    try:
        validate_username_format(username)
    except ValidationError as exc:
        raise CommandError(f"Username {username!r}: {' '.join(exc.messages)}") from None
    if is_username_taken(username):
        raise CommandError(f"The username {username!r} is taken.")


def _checked_address(address: str) -> str:
    try:
        address = normalize_address(address)
    except EmailChangeError as exc:
        raise CommandError(f"Email {address!r}: {exc.message}") from None
    # A verified address belongs to one account: it is where that account's notices and
    # resets go, so handing it to a second account would hand over the first.
    if Email.objects.filter(address__iexact=address, verified=True).exists():
        raise CommandError(f"The address {address} is already verified on another account.")
    return address


def checked_identity(options: dict[str, Any]) -> tuple[str, str, str]:
    """The username, address and name an operator gave, checked: free username, address
    verified on no account, name within bounds (createstaff and createuser alike)."""
    username, name = options["username"].strip(), options["name"].strip()
    _check_username(username)
    address = _checked_address(options["email"])
    if len(name) > MAX_NAME_LENGTH:
        raise CommandError(f"A name has at most {MAX_NAME_LENGTH} characters.")
    return username, address, name


def _check_password(password: str, *, username: str, name: str) -> None:
    try:
        validate_password(password, user=User(username=username, name=name))
    except ValidationError as exc:
        raise CommandError("Password refused: " + " ".join(exc.messages)) from None


class Command(BaseCommand):
    help = (
        "Create a staff account with a verified primary address. The password is asked twice "
        "on a terminal, or read as one line from standard input."
    )
    # Lets tests hand in a stream in place of sys.stdin through call_command.
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", required=True)
        parser.add_argument("--email", required=True, help="verified at once: you vouch for it")
        parser.add_argument("--name", default="", help="the person's name, shown to staff")
        parser.add_argument(
            "--no-password",
            action="store_true",
            help="no password: the staff member sets one through a password reset",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        bring_schema_up_to_date()
        username, address, name = checked_identity(options)
        password = None
        if not options["no_password"]:
            password = self._read_password(options.get("stdin") or sys.stdin)
            _check_password(password, username=username, name=name)
        try:
            create_verified_user(
                username=username, email=address, password=password, name=name, is_staff=True
            )
        except IntegrityError:  # created by someone else between the checks and now
            raise CommandError(f"{username!r} or {address} was taken just now.") from None
        self.stdout.write(f"Created staff account {username!r} with verified address {address}.")
        if password is None:
            self.stdout.write(
                f"It has no password yet: reset one at {settings.BASE_URL}/account/reset/."
            )

    def _read_password(self, stream: TextIO) -> str:
        if stream.isatty():
            first = getpass.getpass("Password: ")
            again = getpass.getpass("Password (again): ")
            if not secrets.compare_digest(first.encode(), again.encode()):
                raise CommandError("The two passwords differ. Nothing was created.")
            password = first
        else:
            # Only the line break is removed: spaces belong to the password (NIST N30).
            password = stream.readline().removesuffix("\n").removesuffix("\r")
        if not password:
            raise CommandError("No password given. Type one, or use --no-password.")
        return password
