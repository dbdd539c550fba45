"""Limits on password guessing that a stranger cannot turn into a lockout of the owner.

The policy (ASVS 6.1.1 asks for it to be written down; NIST N20/N21, ASVS 6.3.1):

1. **Per client IP**, for devices the account does not know: at most ``IP_LIMIT`` failed password
   checks, whatever the account. Stops one machine spraying passwords over many accounts.
2. **Per account**, for devices the account does not know: consecutive failures are counted on
   ``User.failed_signins``. From the ``BACKOFF_AFTER``-th failure on, the next attempt waits
   min(30 s * 2**(n-5), 1 h) after the last failure; at ``HARD_STOP`` (NIST N20's ceiling of 100)
   password sign-in from new devices stops until a password reset or a successful sign-in from a
   known device. An attempt during the wait is refused *without* checking the password and is not
   counted. Any correct password, and every password reset, sets the count back to zero (N21).
3. **Per known device** (``relatch.accounts.devices``): at most ``DEVICE_LIMIT`` failures. Limits 1
   and 2 do not apply, so however many strangers guess, the owner still signs in from a browser
   they used before; and resets never lock anything (FP11).

Counting in parallel (issue 18 §8). Every limit counts *completed* failures, and an attempt
reserves its place before its password is checked (``relatch.accounts.limit_store``: one row
lock makes the check and the reservation one step, in every web process alike). The verdict:

- the completed failures alone reach the limit: refused at once, unchecked and uncounted;
- the limit has room even if every check in flight fails: admitted, its reservation held;
- else the attempt waits (``POLL``) for the checks in flight to end and asks again. A right
  password frees its reservation, a wrong one turns into a failure, so each admitted guess is
  one the limit had room for: 60 parallel wrong passwords from one address get exactly 30
  checked, and 36 parallel right ones all get in (earlier, reservations of checks still running
  counted as failures for everyone else, and 12 of 36 right passwords were refused).

So at most ``BACKOFF_AFTER`` - failures checks of one account from new devices run at once, and
none while a back-off is on; the number of guesses stays bounded by ``HARD_STOP`` (NIST N20).
An attempt that cannot get a verdict within ``PATIENCE`` is refused as throttled (a server too
busy to finish a password check in that time).

These limits live in the database whatever the Redis setting: a password check costs ~100 ms of
Argon2, so a few row-locked statements are nothing, and sign-in keeps its limits whole through
a Redis outage (issue 18 §9).

Identifiers that name no account get the same back-off, kept in a limit row of their own (the
identifier's SHA-256), so the "too many attempts for this account" message does not reveal
which addresses are registered (ASVS 6.3.8).

Residual risk, accepted: someone holding a stolen device cookie (HttpOnly, so only malware on
the device) gets ``DEVICE_LIMIT`` guesses per window for that account.
"""

import hashlib
import math
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from relatch.accounts import limit_store
from relatch.accounts.limit_store import Verdict, Window
from relatch.accounts.models import User
from relatch.accounts.ratelimit import window

IP_LIMIT = "30/15 minutes"
DEVICE_LIMIT = "10/15 minutes"
LIMIT_WINDOW = timedelta(minutes=15)  # the window of IP_LIMIT and DEVICE_LIMIT
BACKOFF_AFTER = 5
FIRST_WAIT = timedelta(seconds=30)
LONGEST_WAIT = timedelta(hours=1)
HARD_STOP = 100
PHANTOM_WINDOW = timedelta(days=7)  # failures on a name without an account are kept this long
POLL = 0.05  # seconds between asks while only checks in flight stand in the way (± half)
PATIENCE = 10.0  # seconds an attempt waits for a verdict at most
_IP, _DEVICE, _ACCOUNT, _PHANTOM = "signin-ip", "signin-device", "signin-account", "signin-phantom"


class Reason(StrEnum):
    IP = "ip"
    DEVICE = "device"
    ACCOUNT_WAIT = "account_wait"
    ACCOUNT_LOCKED = "account_locked"


@dataclass(frozen=True)
class Throttle:
    """Why an attempt was refused before its password was checked."""

    reason: Reason
    wait: timedelta | None = None  # None: waiting does not help (the account's ceiling)

    @property
    def minutes(self) -> int:
        seconds = (self.wait or LIMIT_WINDOW).total_seconds()
        return max(1, math.ceil(seconds / 60))

    @property
    def message(self) -> str:
        wait = f"{self.minutes} minute{'s' if self.minutes != 1 else ''}"
        match self.reason:
            case Reason.IP:
                return f"Too many failed sign-ins from your network. Try again in {wait}."
            case Reason.DEVICE:
                return f"Too many failed attempts from this browser. Try again in {wait}."
            case Reason.ACCOUNT_WAIT:
                return (
                    "Too many failed attempts for this account from new devices. "
                    f"Try again in {wait}, or reset your password."
                )
        return (
            "Too many failed attempts for this account from new devices. Reset your password, "
            "or sign in from a browser you have used for this account before."
        )


@dataclass(frozen=True)
class Attempt:
    """One password attempt: the account it names (if any), the identifier typed, the client."""

    user: User | None
    identifier: str
    ip: str | None
    known_device: str | None  # digest of this browser's id, only when the account knows it


def backoff_wait(failures: int) -> timedelta | None:
    """How long after the last failure the next attempt must wait; None when it need not."""
    if failures < BACKOFF_AFTER:
        return None
    doublings = min(failures - BACKOFF_AFTER, 8)  # 30 s * 2**7 already exceeds an hour
    return min(FIRST_WAIT * 2**doublings, LONGEST_WAIT)


def account_throttle(
    failures: int, last_failed_at: datetime | None, now: datetime
) -> Throttle | None:
    """The account counter's verdict for an attempt at ``now`` from a new device."""
    if failures >= HARD_STOP:
        return Throttle(Reason.ACCOUNT_LOCKED)
    wait = backoff_wait(failures)
    if wait is None or last_failed_at is None:
        return None
    remaining = last_failed_at + wait - now
    return Throttle(Reason.ACCOUNT_WAIT, remaining) if remaining > timedelta(0) else None


@dataclass(frozen=True)
class Claim:
    """A place reserved for one attempt under one limit, settled once its password is checked."""

    scope: str
    key: str
    window: Window
    keeps_failure: bool  # False: the account's failures are counted on its User row instead


@dataclass(frozen=True)
class Admission:
    """The verdict on an attempt: ``throttle`` when refused, else the places it holds."""

    throttle: Throttle | None
    token: str = ""
    claims: tuple[Claim, ...] = ()


@dataclass(frozen=True)
class _Wait:
    """Undecided for now; ``throttle`` is the answer if it stays so past PATIENCE."""

    throttle: Throttle


def before_password(*, attempt: Attempt) -> Admission:
    """Refuse the attempt, or admit it holding its places; wait while it cannot be told yet.

    An admitted attempt must be settled: ``count_failure``, ``count_success`` or ``release``.
    """
    token = limit_store.new_token()
    deadline = time.monotonic() + PATIENCE
    while True:
        outcome = _try_once(attempt, token)
        if isinstance(outcome, tuple):
            return Admission(None, token, outcome)
        if isinstance(outcome, Throttle):
            return Admission(outcome)
        if time.monotonic() >= deadline:
            return Admission(outcome.throttle)
        time.sleep(POLL * (0.5 + random.random()))  # noqa: S311 (spreads the asks; no secret)


def count_failure(*, attempt: Attempt, admission: Admission) -> None:
    """A wrong password: one more failure for the account (new devices) and every window."""
    if attempt.user is not None and attempt.known_device is None:
        # Before the account's place is given back, in the caller's transaction: an attempt
        # waiting on this one sees either the place or the failure, never neither.
        User.objects.filter(pk=attempt.user.pk).update(
            failed_signins=F("failed_signins") + 1, last_failed_signin_at=timezone.now()
        )
    _settle(admission, failed=True)


def count_success(*, user: User, admission: Admission) -> None:
    """A right password: earlier failures no longer count (NIST N21), its places are freed."""
    forget_failures(user=user)
    _settle(admission, failed=False)


def release(*, admission: Admission) -> None:
    """The check ended without an answer (an error): free the places, count nothing."""
    _settle(admission, failed=False)


def forget_failures(*, user: User) -> None:
    """A correct password or a reset: earlier failures no longer count (NIST N21)."""
    User.objects.filter(pk=user.pk).update(failed_signins=0, last_failed_signin_at=None)
    user.failed_signins, user.last_failed_signin_at = 0, None


def _try_once(attempt: Attempt, token: str) -> Throttle | _Wait | tuple[Claim, ...]:
    first, refusal = _client_claim(attempt)
    verdict = limit_store.reserve(scope=first.scope, key=first.key, window=first.window,
                                  token=token)
    if verdict is not Verdict.RESERVED:
        return refusal if verdict is Verdict.REFUSED else _Wait(refusal)
    if attempt.known_device is not None:
        return (first,)  # a browser the account knows: the account's back-off does not apply
    outcome = _reserve_on_account(attempt, token, timezone.now())
    if isinstance(outcome, Claim):
        return (first, outcome)
    _settle(Admission(None, token, (first,)), failed=False)
    return outcome


def _client_claim(attempt: Attempt) -> tuple[Claim, Throttle]:
    """The limit on who is asking: this browser when the account knows it, else the address."""
    if attempt.known_device is not None:
        assert attempt.user is not None  # a device is only known to an account
        key = f"{attempt.user.pk}:{attempt.known_device}"
        return Claim(_DEVICE, key, window(DEVICE_LIMIT), True), Throttle(Reason.DEVICE)
    return Claim(_IP, attempt.ip or "unknown", window(IP_LIMIT), True), Throttle(Reason.IP)


@transaction.atomic
def _reserve_on_account(attempt: Attempt, token: str, now: datetime) -> Throttle | _Wait | Claim:
    # Under the account's row lock (or its phantom row's): the failures read here cannot change
    # before the reservation is written.
    if attempt.user is None:
        failures, last, claim = _phantom_state(attempt.identifier)
    else:
        row = User.objects.select_for_update().only("failed_signins", "last_failed_signin_at")
        user = row.get(pk=attempt.user.pk)
        failures, last = user.failed_signins, user.last_failed_signin_at
        # Room for the checks that may run at once: as many as failures are left before the
        # back-off starts, and one at a time once it has (its next failure starts a new wait).
        room = Window(max(BACKOFF_AFTER - failures, 1), limit_store.STALE_SECONDS)
        claim = Claim(_ACCOUNT, str(user.pk), room, keeps_failure=False)
    if throttle := account_throttle(failures, last, now):
        return throttle
    verdict = limit_store.reserve(scope=claim.scope, key=claim.key, window=claim.window,
                                  token=token)
    if verdict is Verdict.RESERVED:
        return claim
    return _Wait(Throttle(Reason.ACCOUNT_WAIT, FIRST_WAIT))


def _phantom_state(identifier: str) -> tuple[int, datetime | None, Claim]:
    """A name without an account: its failures are the events of its own limit row, and the
    room in flight is the same as an account's (the window's amount is the failures so far
    plus that room)."""
    key = hashlib.sha256(identifier.lower().encode()).hexdigest()
    seconds = PHANTOM_WINDOW.total_seconds()
    hits = limit_store.locked_hits(scope=_PHANTOM, key=key, window=Window(HARD_STOP, seconds))
    last = datetime.fromtimestamp(hits[-1], tz=UTC) if hits else None
    amount = len(hits) + max(BACKOFF_AFTER - len(hits), 1)
    return len(hits), last, Claim(_PHANTOM, key, Window(amount, seconds), keeps_failure=True)


def _settle(admission: Admission, *, failed: bool) -> None:
    for claim in admission.claims:
        limit_store.settle(scope=claim.scope, key=claim.key, window=claim.window,
                           token=admission.token, counts=failed and claim.keeps_failure)
