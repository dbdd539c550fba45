"""Positions in one account's security history, for keyset paging through it.

A cursor names one event by its time (integer microseconds since the epoch) and id, signed
for the signed-in account: ``<microseconds>.<id>:<signature>``. It tells nothing the owner
cannot see on the page anyway. The signature makes a tampered cursor, or one copied from
another account's history, count as no cursor at all (the newest page), instead of a position
someone else chose.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# Any user model's base, not relatch.accounts' User: audit sits below accounts (the apps
# import one way, tests/test_import_order.py), so rows are written by the user's id.
from django.contrib.auth.base_user import AbstractBaseUser as User
from django.core import signing

from relatch.audit.models import SecurityEvent

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
# Bounded before int(): a long run of digits costs quadratic time to convert (CVE-2020-10735).
_POSITION = re.compile(r"(-?\d{1,19})\.(\d{1,19})")
_LARGEST_ID = 2**63 - 1  # a bigint column: a larger number would be a database error


@dataclass(frozen=True)
class Position:
    """An event's place in the history order (-created_at, -id)."""

    created_at: datetime
    id: int


def _signer(user: User) -> signing.Signer:
    # Salted with the account: a cursor is valid only in the history it came from.
    return signing.Signer(salt=f"relatch.audit.cursors:{user.pk}")


def history_cursor(*, user: User, event: SecurityEvent) -> str:
    """The cursor of ``event`` in ``user``'s history, for an ``?before=``/``?after=`` link."""
    microseconds = (event.created_at - _EPOCH) // _MICROSECOND
    return _signer(user).sign(f"{microseconds}.{event.pk}")


def history_position(*, user: User, cursor: str) -> Position | None:
    """The position a cursor names, or None when it is malformed, tampered with or another
    account's."""
    try:
        value = _signer(user).unsign(cursor)
    except signing.BadSignature:
        return None
    match = _POSITION.fullmatch(value)
    if match is None or int(match[2]) > _LARGEST_ID:
        return None
    try:
        created_at = _EPOCH + int(match[1]) * _MICROSECOND
    except OverflowError:
        return None
    return Position(created_at=created_at, id=int(match[2]))
