"""Rate limits kept in the database: moving windows shared by every web process.

Used when there is no Redis (whatever RELATCH_WEB_WORKERS says: every process reads and writes
the same rows, so three processes allow what one would, never three times as much), during a
Redis outage (``relatch.accounts.ratelimit``), and always for password guesses
(``relatch.accounts.passwords.throttling``), which need a count that knows which checks are
still in flight.

One ``LimitCounter`` row per (scope, key) holds the times of the events counted in the window
and the reservations of checks in flight. Every change reads the row under its lock
(``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's IMMEDIATE transactions let one writer in at
a time), so a check and its count are one step: parallel requests cannot all read "29 of 30"
and all go through (issue 18 §8 saw 35-42 of 30 so, and 85 with three processes).

A reservation is an event counted in advance, before the outcome is known. It is settled when
the outcome is: kept as an event (a wrong password) or dropped (a right one). A reservation
that is never settled (a process killed in the middle) is dropped after ``STALE_SECONDS``: the
request it stood for never got an answer, so it told nobody anything.
"""

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

from django.db import transaction

from relatch.accounts.models import LimitCounter

STALE_SECONDS = 60.0  # far longer than any password check
_SWEEP = 100  # expired rows deleted whenever a new row is made, so the table stays small


@dataclass(frozen=True)
class Window:
    """At most ``amount`` events in any ``seconds`` (a moving window)."""

    amount: int
    seconds: float


class Verdict(Enum):
    RESERVED = "reserved"  # counted in advance; settle it when the outcome is known
    REFUSED = "refused"  # the window is full of events that already happened
    UNDECIDED = "undecided"  # only checks still in flight stand in the way: ask again soon


def new_token() -> str:
    return uuid.uuid4().hex


def hit(*, scope: str, key: str, window: Window) -> bool:
    """Count one event; False (and nothing counted) when the window is already full."""
    return _reserve(scope, key, window, token=None) is Verdict.RESERVED


def allows(*, scope: str, key: str, window: Window) -> bool:
    """Whether one more event would fit now, without counting one."""
    row = LimitCounter.objects.filter(scope=scope, key=key).first()
    if row is None:
        return True
    now = time.time()
    return len(_live_hits(row, window, now)) + len(_live_pending(row, now)) < window.amount


def seconds_until_allowed(*, scope: str, key: str, window: Window) -> float:
    row = LimitCounter.objects.filter(scope=scope, key=key).first()
    if row is None:
        return 0.0
    now = time.time()
    hits = _live_hits(row, window, now)
    if len(hits) + len(_live_pending(row, now)) < window.amount or not hits:
        return 0.0
    return max(hits[0] + window.seconds - now, 0.0)


def locked_hits(*, scope: str, key: str, window: Window) -> list[float]:
    """The events counted in the window, oldest first, the row locked until the caller's
    transaction ends (call it inside one)."""
    return _live_hits(_locked_row(scope, key), window, time.time())


def reserve(*, scope: str, key: str, window: Window, token: str) -> Verdict:
    """Count ``token``'s event in advance when the window has room even if every check in
    flight fails; refuse when completed events alone fill it; else UNDECIDED."""
    return _reserve(scope, key, window, token=token)


@transaction.atomic
def settle(*, scope: str, key: str, window: Window, token: str, counts: bool) -> None:
    """The outcome of ``token``'s check: ``counts`` keeps it as an event (a failure), else it
    is dropped (a success takes nothing from the limit)."""
    row = _locked_row(scope, key)
    started = row.pending.pop(token, None)
    if counts and started is not None:
        row.hits = [*_live_hits(row, window, time.time()), time.time()]
    _save(row, window)


def clear(*, scope: str, key: str) -> None:
    LimitCounter.objects.filter(scope=scope, key=key).delete()


def reset() -> None:
    LimitCounter.objects.all().delete()


@transaction.atomic
def _reserve(scope: str, key: str, window: Window, *, token: str | None) -> Verdict:
    row = _locked_row(scope, key)
    now = time.time()
    hits, pending = _live_hits(row, window, now), _live_pending(row, now)
    if len(hits) >= window.amount:
        return Verdict.REFUSED
    if len(hits) + len(pending) >= window.amount:
        return Verdict.UNDECIDED if token is not None else Verdict.REFUSED
    row.hits, row.pending = hits, pending
    if token is None:
        row.hits.append(now)
    else:
        row.pending[token] = now
    _save(row, window)
    return Verdict.RESERVED


def _locked_row(scope: str, key: str) -> LimitCounter:
    rows = LimitCounter.objects.select_for_update().filter(scope=scope, key=key)
    for _ in range(3):  # a sweep in another process may delete the row between the two steps
        if (row := rows.first()) is not None:
            return row
        _sweep_expired()
        LimitCounter.objects.bulk_create(
            [LimitCounter(scope=scope, key=key, expires_at=_at(time.time()))],
            ignore_conflicts=True,  # another process made it first: lock theirs
        )
    raise LimitCounter.DoesNotExist(f"{scope}:{key}")


def _sweep_expired() -> None:
    expired = LimitCounter.objects.filter(expires_at__lt=_at(time.time()))
    ids = list(expired.values_list("pk", flat=True)[:_SWEEP])
    if ids:
        LimitCounter.objects.filter(pk__in=ids, expires_at__lt=_at(time.time())).delete()


def _live_hits(row: LimitCounter, window: Window, now: float) -> list[float]:
    return [at for at in row.hits if at > now - window.seconds]


def _live_pending(row: LimitCounter, now: float) -> dict[str, float]:
    return {token: at for token, at in row.pending.items() if at > now - STALE_SECONDS}


def _save(row: LimitCounter, window: Window) -> None:
    ends = [at + window.seconds for at in row.hits] + [at + STALE_SECONDS
                                                       for at in row.pending.values()]
    row.expires_at = _at(max(ends, default=time.time()))
    row.save(update_fields=["hits", "pending", "expires_at"])


def _at(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)
