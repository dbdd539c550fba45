"""Password rules beyond Django's (NIST SP 800-63B-4 §3.1.1): no composition rules; a length
cap high enough for any passphrase but low enough that hashing cannot be abused."""

import re
from typing import Any

from django.core.exceptions import ValidationError

MAX_PASSWORD_LENGTH = 1024
CONTEXT_WORDS = ("relatch", "pypi", "password", "passwort")


class MaximumLengthValidator:
    def validate(self, password: str, user: Any = None) -> None:
        if len(password) > MAX_PASSWORD_LENGTH:
            raise ValidationError(
                f"This password is longer than {MAX_PASSWORD_LENGTH} characters.",
                code="password_too_long",
            )

    def get_help_text(self) -> str:
        return f"At most {MAX_PASSWORD_LENGTH} characters; long passphrases are welcome."


class ContextWordValidator:
    """Refuses a password that is only this service's name (or "password") dressed up with
    digits and symbols, which guessing lists try first."""

    def validate(self, password: str, user: Any = None) -> None:
        letters = re.sub(r"[^a-z]", "", password.lower())
        if letters in CONTEXT_WORDS:
            raise ValidationError(
                "This password is built on a word attackers try first for this site.",
                code="password_context_word",
            )

    def get_help_text(self) -> str:
        return "Not built on the site's name."
