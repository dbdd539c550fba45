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

An attempt from a new device is counted *before* its password is checked (and the count undone
when the password is right), under a row lock: parallel requests cannot slip extra guesses past
the back-off or the ceiling.

Identifiers that name no account get the same back-off, kept in the cache, so the "too many
attempts for this account" message does not reveal which addresses are registered (ASVS 6.3.8).

Residual risk, accepted: someone holding a stolen device cookie (HttpOnly, so only malware on
the device) gets ``DEVICE_LIMIT`` guesses per window for that account.
"""

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from relatch.accounts import ratelimit
from relatch.accounts.models import User

IP_LIMIT = "30/15 minutes"
DEVICE_LIMIT = "10/15 minutes"
LIMIT_WINDOW = timedelta(minutes=15)  # the window of IP_LIMIT and DEVICE_LIMIT
BACKOFF_AFTER = 5
FIRST_WAIT = timedelta(seconds=30)
LONGEST_WAIT = timedelta(hours=1)
HARD_STOP = 100
_PHANTOM_TTL = 7 * 24 * 3600


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


def before_password(*, attempt: Attempt) -> Throttle | None:
    """Refuse the attempt, or let it through (counting it in advance for new devices)."""
    if attempt.known_device is not None:
        assert attempt.user is not None  # a device is only known to an account
        key = _device_key(attempt.user, attempt.known_device)
        allowed = ratelimit.allows(scope="signin-device", key=key, limit=DEVICE_LIMIT)
        return None if allowed else Throttle(Reason.DEVICE)
    if not ratelimit.allows(scope="signin-ip", key=_ip_key(attempt), limit=IP_LIMIT):
        return Throttle(Reason.IP)
    if attempt.user is None:
        return _reserve_on_phantom(attempt.identifier, timezone.now())
    return _reserve_on_account(attempt.user.pk, timezone.now())


def count_failure(*, attempt: Attempt) -> None:
    """Count a wrong password in the window limits (the account counter already has it)."""
    if attempt.known_device is not None:
        assert attempt.user is not None
        key = _device_key(attempt.user, attempt.known_device)
        ratelimit.hit(scope="signin-device", key=key, limit=DEVICE_LIMIT)
    else:
        ratelimit.hit(scope="signin-ip", key=_ip_key(attempt), limit=IP_LIMIT)


def forget_failures(*, user: User) -> None:
    """A correct password or a reset: earlier failures no longer count (NIST N21)."""
    User.objects.filter(pk=user.pk).update(failed_signins=0, last_failed_signin_at=None)
    user.failed_signins, user.last_failed_signin_at = 0, None


@transaction.atomic
def _reserve_on_account(user_id: int, now: datetime) -> Throttle | None:
    # The row lock makes check-and-count one step, so concurrent guesses queue up behind it.
    row = User.objects.select_for_update().only("failed_signins", "last_failed_signin_at")
    user = row.get(pk=user_id)
    throttle = account_throttle(user.failed_signins, user.last_failed_signin_at, now)
    if throttle is None:
        User.objects.filter(pk=user_id).update(
            failed_signins=F("failed_signins") + 1, last_failed_signin_at=now
        )
    return throttle


def _reserve_on_phantom(identifier: str, now: datetime) -> Throttle | None:
    key = "relatch-signin-phantom:" + hashlib.sha256(identifier.lower().encode()).hexdigest()
    failures, last_ts = cache.get(key, (0, None))
    last = datetime.fromtimestamp(last_ts, tz=now.tzinfo) if last_ts is not None else None
    throttle = account_throttle(failures, last, now)
    if throttle is None:
        cache.set(key, (failures + 1, now.timestamp()), _PHANTOM_TTL)
    return throttle


def _ip_key(attempt: Attempt) -> str:
    return attempt.ip or "unknown"


def _device_key(user: User, digest: str) -> str:
    return f"{user.pk}:{digest}"
