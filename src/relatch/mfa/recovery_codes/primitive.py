"""Recovery codes as text: making them, reading them back, hashing them.

A code is 20 symbols shown in five groups of four, e.g. ``7KQ2-MX9D-R4TB-HN3W-PZ8E``:

- the first group is a random **identifier** (20 bits), stored in clear and unique within the
  set, so a check looks up one row and costs ONE Argon2 verification, not eight (DESIGN §2);
- the other sixteen symbols are the **secret**: 16 × 5 = 80 bits from ``secrets``, at least the
  64 bits NIST asks for (N2, ASVS 6.5.3), stored only as an Argon2id hash with Django's random
  128-bit salt (N23, ASVS 6.5.2: under 112 bits, so salted and password-hashed).

The alphabet is Crockford's Base32: the digits and the capital letters without I, L, O and U.
Of each group of look-alikes (0/O, 1/I/L) only the digit is in it, and U is left out so codes do
not spell words. Reading is forgiving in the ways people type, and deterministic: case is
ignored; spaces and dashes anywhere are ignored; O is read as 0, I and L as 1 (Crockford's own
decoding rules). It is strict about the rest: exactly 20 symbols, nothing outside the alphabet
(U included), no input over 64 characters.
"""

import math
import secrets
from dataclasses import dataclass, field
from functools import cache

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.core.exceptions import ImproperlyConfigured

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
IDENTIFIER_LENGTH = 4
SECRET_LENGTH = 16
GROUP_LENGTH = 4
CODES_PER_SET = 8
SECRET_BITS = SECRET_LENGTH * math.log2(len(ALPHABET))
CODE_LENGTH = IDENTIFIER_LENGTH + SECRET_LENGTH
# Room for every separator a person might add; anything longer is not a code (and is not worth
# normalising: an attacker's megabyte of text gets the same one dummy check as a typo).
MAX_INPUT_LENGTH = 64
# Crockford's decoding of the look-alikes that are not in the alphabet.
LOOK_ALIKES = str.maketrans({"O": "0", "I": "1", "L": "1"})
# Separators people type or paste: space-like characters (any str.isspace()) and dashes,
# including the typographic ones a word processor or PDF substitutes for "-".
DASHES = frozenset("-\u2010\u2011\u2012\u2013\u2014\u2015\u2212")
EXAMPLE = "ABCD-EFGH-JKMN-PQRS-TVWX"
MALFORMED_MESSAGE = (
    f"A recovery code has {CODE_LENGTH} letters and digits in groups of {GROUP_LENGTH}, "
    f"like {EXAMPLE}."
)
FOREIGN_MESSAGE = f"That contains characters that are never in a code. {MALFORMED_MESSAGE}"
_ARGON2ID_PREFIX = "argon2$argon2id$"
_DUMMY_SECRET = "0" * SECRET_LENGTH


class MalformedCodeError(ValueError):
    """Text that cannot be a recovery code; ``message`` says what a code looks like."""

    def __init__(self, message: str = MALFORMED_MESSAGE) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class RecoveryCodeText:
    """One code in canonical form. ``secret`` is left out of repr so it never reaches a log."""

    identifier: str
    secret: str = field(repr=False)

    @property
    def formatted(self) -> str:
        """The code as shown to people: groups of four joined by dashes."""
        symbols = self.identifier + self.secret
        groups = [symbols[i : i + GROUP_LENGTH] for i in range(0, len(symbols), GROUP_LENGTH)]
        return "-".join(groups)


def _random_symbols(count: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(count))


def new_code_set(count: int = CODES_PER_SET) -> list[RecoveryCodeText]:
    """``count`` fresh codes with distinct identifiers (a repeat is drawn again)."""
    codes: dict[str, RecoveryCodeText] = {}
    while len(codes) < count:
        identifier = _random_symbols(IDENTIFIER_LENGTH)
        if identifier not in codes:
            codes[identifier] = RecoveryCodeText(identifier, _random_symbols(SECRET_LENGTH))
    return list(codes.values())


def parse_code(text: str) -> RecoveryCodeText:
    """Read a code as a person typed it; raise MalformedCodeError if it cannot be one."""
    if len(text) > MAX_INPUT_LENGTH:
        raise MalformedCodeError(f"That is too long for a recovery code. {MALFORMED_MESSAGE}")
    symbols = "".join(c for c in text if not (c.isspace() or c in DASHES))
    # Only ASCII is upper-cased: Unicode case rules would turn e.g. a dotless "ı" into "I".
    if not symbols.isascii():
        raise MalformedCodeError(FOREIGN_MESSAGE)
    symbols = symbols.upper().translate(LOOK_ALIKES)
    if any(c not in ALPHABET for c in symbols):
        raise MalformedCodeError(FOREIGN_MESSAGE)
    if len(symbols) != CODE_LENGTH:
        raise MalformedCodeError()
    return RecoveryCodeText(symbols[:IDENTIFIER_LENGTH], symbols[IDENTIFIER_LENGTH:])


def hash_secret(secret: str) -> str:
    """The Argon2id hash (salted) of a code's secret, with the configured first hasher."""
    encoded = make_password(secret)
    if not encoded.startswith(_ARGON2ID_PREFIX):
        # NIST N23 / ASVS 6.5.2 need a password hash; refuse to store anything weaker.
        raise ImproperlyConfigured("Recovery codes need Argon2 first in PASSWORD_HASHERS.")
    return encoded


def verify_secret(secret: str, encoded: str) -> bool:
    """One Argon2 verification of ``secret`` against ``encoded`` (constant-time inside)."""
    return check_password(secret, encoded)


def dummy_verify() -> None:
    """One Argon2 verification that always fails, at the same cost as a real one: a check for
    an identifier that does not exist, or for text that is no code, costs what a wrong code
    costs, so timing does not tell which identifiers exist."""
    verify_secret(_DUMMY_SECRET + "x", _dummy_hash(tuple(settings.PASSWORD_HASHERS)))


@cache
def _dummy_hash(hashers: tuple[str, ...]) -> str:
    # Keyed on the configured hashers, so a change of parameters (tests, an operator's upgrade)
    # gets a dummy with the same cost as the real hashes made under it.
    return hash_secret(_DUMMY_SECRET)
