"""API tokens as text: making them, reading them back, hashing their secret.

A token reads ``relatch-<identifier>.<secret>``:

- the ``relatch-`` prefix lets secret scanners (GitHub's, trufflehog, gitleaks) recognise a
  leaked token in a commit or a log;
- the **identifier** is 16 random symbols of ``[a-z0-9]`` (~82 bits), stored in clear and
  unique, so a check looks up one row;
- the **secret** is ``secrets.token_urlsafe(32)``: 256 random bits (ASVS 6.4.1 / NIST N2 ask
  for far less). It is stored only as its SHA-256: a secret this long cannot be guessed, so a
  fast hash suffices and every check costs the same (DESIGN §2).

Reading is strict: exactly one prefix, identifier and secret of the right length and alphabet,
nothing longer than ``MAX_TOKEN_LENGTH``. A token is pasted, never typed, so nothing is forgiven.
"""

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass, field

PREFIX = "relatch-"
SEPARATOR = "."
IDENTIFIER_ALPHABET = string.ascii_lowercase + string.digits
IDENTIFIER_LENGTH = 16
SECRET_BYTES = 32
SECRET_BITS = SECRET_BYTES * 8
# token_urlsafe(32) is the base64url text of 32 bytes without padding: 43 characters.
SECRET_LENGTH = 43
SECRET_ALPHABET = frozenset(string.ascii_letters + string.digits + "-_")
MAX_TOKEN_LENGTH = len(PREFIX) + IDENTIFIER_LENGTH + len(SEPARATOR) + SECRET_LENGTH
# Compared against when an identifier is unknown, so an unknown identifier costs what a wrong
# secret costs (no timing tells which identifiers exist).
_DUMMY_DIGEST = hashlib.sha256(b"relatch dummy token secret").hexdigest()


class MalformedTokenError(ValueError):
    """Text that cannot be a Relatch API token."""


@dataclass(frozen=True)
class TokenText:
    """A token split in its parts. ``secret`` is left out of repr so it never reaches a log."""

    identifier: str
    secret: str = field(repr=False)

    @property
    def text(self) -> str:
        """The whole token, as the user pastes it into twine's configuration."""
        return f"{PREFIX}{self.identifier}{SEPARATOR}{self.secret}"


def new_token() -> TokenText:
    """A fresh token from ``secrets``."""
    identifier = "".join(secrets.choice(IDENTIFIER_ALPHABET) for _ in range(IDENTIFIER_LENGTH))
    return TokenText(identifier, secrets.token_urlsafe(SECRET_BYTES))


def parse_token(raw: str) -> TokenText:
    """Split ``raw`` into identifier and secret; raise MalformedTokenError if it is no token."""
    # Length first: an attacker's megabyte of text is refused before any other work.
    if len(raw) != MAX_TOKEN_LENGTH or not raw.startswith(PREFIX):
        raise MalformedTokenError()
    identifier, separator, secret = raw[len(PREFIX) :].partition(SEPARATOR)
    if (
        separator != SEPARATOR
        or len(identifier) != IDENTIFIER_LENGTH
        or any(c not in IDENTIFIER_ALPHABET for c in identifier)
        or len(secret) != SECRET_LENGTH
        or any(c not in SECRET_ALPHABET for c in secret)
    ):
        raise MalformedTokenError()
    return TokenText(identifier, secret)


def digest_secret(secret: str) -> str:
    """The SHA-256 (hex) of a token's secret: the only form in which it is stored."""
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, digest: str | None) -> bool:
    """Constant-time check of ``secret`` against ``digest``; None (an unknown identifier) is
    checked against a dummy digest so it takes the same time and always fails."""
    expected = digest if digest is not None else _DUMMY_DIGEST
    matches = hmac.compare_digest(digest_secret(secret).encode(), expected.encode())
    return matches and digest is not None
