"""Username rules, PyPI's: letters, digits, ".", "_", "-"; starting and ending with a letter or
digit; at most 50 characters; unique ignoring case; some names reserved."""

import re

from django.core.exceptions import ValidationError

from relatch.accounts.models import User

MAX_USERNAME_LENGTH = 50
_USERNAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")

# Names that would let an account pass for the service, its staff, or one of its pages.
RESERVED_USERNAMES = frozenset(
    {
        "about", "abuse", "account", "accounts", "admin", "administrator", "api", "billing",
        "dev", "files", "help", "hostmaster", "index", "info", "legacy", "login", "logout",
        "mail", "mailer-daemon", "manage", "moderator", "noreply", "no-reply", "null",
        "operator", "owner", "postmaster", "pypi", "pypa", "recovery", "register", "relatch",
        "root", "security", "simple", "staff", "static", "support", "sysadmin", "system",
        "team", "user", "users", "webmaster", "www",
    }
)


def validate_username_format(value: str) -> None:
    """Raise ValidationError with a plain reason when ``value`` breaks a username rule."""
    if not value:
        raise ValidationError("Enter a username.", code="required")
    if len(value) > MAX_USERNAME_LENGTH:
        raise ValidationError(
            f"A username has at most {MAX_USERNAME_LENGTH} characters.", code="too_long"
        )
    if not _USERNAME_RE.fullmatch(value):
        raise ValidationError(
            "Use letters, digits, '.', '_' and '-', starting and ending with a letter or digit.",
            code="invalid",
        )
    if value.lower() in RESERVED_USERNAMES:
        raise ValidationError("This username is reserved. Choose another.", code="reserved")


def is_username_taken(value: str) -> bool:
    """Usernames are public, so saying one is taken reveals nothing secret."""
    return User.objects.filter(username__iexact=value).exists()
