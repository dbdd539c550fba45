"""Limits on guessing second factors, that a stranger cannot turn into a lockout of the owner.

The policy (ASVS 6.1.1 asks for it to be written down; NIST N20/N21, ASVS 6.3.1):

1. **Only someone who knows the password gets here.** The second step is reachable only from a
   partial sign-in, which a correct password starts (the sign-in app's ``newdevice.partial``). A
   stranger guessing passwords is held by ``relatch.accounts.passwords.throttling`` and never
   touches these counters: that is why none of the limits below can be used by a stranger to
   lock the owner out.
2. **Per account and per factor**, consecutive failures: the ``SIGNIN_FAILED`` events with that
   factor since the account's last successful sign-in or password reset (kept in the database,
   so a restart forgets nothing). The first ``BACKOFF_AFTER`` failures are free; from then on
   the next attempt waits 30 s, doubling at each failure, up to an hour after the last
   failure. At ``HARD_STOP[factor]`` consecutive failures, well below NIST N20's ceiling of
   100, that factor stops until a successful sign-in (with another factor, from any device) or a
   password reset (which the owner does from their mailbox, and which never locks anything,
   FP11). An attempt refused by a limit is not checked and not counted.
3. **Factors are counted apart**: wrong app codes never slow down or stop recovery codes or
   security keys, so someone who has the password and a stolen phone cannot lock the owner out
   of the recovery-code path (issue 3 §4). Recovery codes have their own, higher, ceiling: each
   carries 80 random bits, so their limit only bounds the Argon2 work, not a guessing chance.
4. **Per client IP and factor**: at most ``IP_LIMIT`` failures in a moving window, whatever the
   account: one machine holding many stolen passwords cannot try codes against all of them.
5. A success disregards every earlier failure of every factor (NIST N21): a sign-in, a password
   reset, or a full re-authentication (password and a factor, the sign-in app's ``reauth``).
6. **Re-authentication counts too.** A wrong factor while confirming a sensitive action is a
   REAUTH_FAILED event with that factor and counts exactly like a failed sign-in step, so a
   stolen session cannot guess codes there beyond these limits.
7. **Passkeys without a password** (the sign-in app's ``passkey``): a failed
   attempt has no account to count against unless the answer names a registered credential,
   so it is counted per IP under ``PASSKEY``, and also on that account's security-key factor
   when the credential is known. Credential ids are not secrets, but Relatch shows them only
   to someone who got past a password or is signed in; and a stopped security-key factor
   still leaves the recovery-code path open (point 3).

Residual risk, accepted: someone who has the password can spend the account's factor attempts,
for hours (the back-off) and at worst until the owner resets the password; each failure after a
correct password is announced to the owner (the sign-in app's ``factor.notices``), who is thereby
told to change it.
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from django.db.models import Count, Subquery, Value, Window
from django.db.models.functions import Coalesce
from django.utils import timezone

from relatch.accounts import ratelimit
from relatch.accounts.models import User
from relatch.accounts.passwords.throttling import backoff_wait
from relatch.audit.models import EventKind, Factor, SecurityEvent

HARD_STOP: dict[str, int] = {
    Factor.TOTP: 20,
    Factor.WEBAUTHN: 20,
    Factor.RECOVERY_CODE: 40,
}
IP_LIMIT = "30/15 minutes"
IP_WINDOW = timedelta(minutes=15)
# Events after which earlier failures no longer count (NIST N21).
_RESETTING_KINDS = (
    EventKind.SIGNIN_SUCCEEDED,
    EventKind.PASSWORD_RESET,
    EventKind.REAUTH_SUCCEEDED,
)
# Failures of a factor, whether while signing in or while confirming a sensitive action.
_FAILURE_KINDS = (EventKind.SIGNIN_FAILED, EventKind.REAUTH_FAILED)
# The IP counter of passkey sign-ins without a password, apart from second-step keys.
PASSKEY = "passkey"

_FACTOR_WORDS: dict[str, str] = {
    Factor.TOTP: "app codes",
    Factor.WEBAUTHN: "security key attempts",
    Factor.RECOVERY_CODE: "recovery codes",
    PASSKEY: "passkey attempts",
}


class Reason(StrEnum):
    IP = "ip"
    WAIT = "wait"
    STOPPED = "stopped"


@dataclass(frozen=True)
class FactorThrottle:
    """Why a second-factor attempt was refused before it was checked."""

    factor: str
    reason: Reason
    wait: timedelta | None = None  # None: waiting does not help (the hard stop)

    @property
    def minutes(self) -> int:
        seconds = (self.wait or IP_WINDOW).total_seconds()
        return max(1, math.ceil(seconds / 60))

    @property
    def message(self) -> str:
        words = _FACTOR_WORDS.get(self.factor, "attempts")
        wait = f"{self.minutes} minute{'s' if self.minutes != 1 else ''}"
        match self.reason:
            case Reason.IP:
                return f"Too many wrong {words} from your network. Try again in {wait}."
            case Reason.WAIT:
                return (
                    f"Too many wrong {words} in a row. Try again in {wait}, "
                    "or use another way to sign in below."
                )
        return (
            f"Too many wrong {words} in a row: they are stopped for this account until it "
            "signs in another way or its password is reset. Use another way to sign in below, "
            "or reset your password."
        )


def consecutive_failures(*, user: User, factor: str) -> tuple[int, datetime | None]:
    """How many attempts with ``factor`` failed since the last success or reset, and when the
    latest of them was."""
    # One statement at every code typed: the last reset as a subquery, and the count of all
    # failures after it next to the newest one (a window over the whole filtered set, counted
    # before LIMIT 1). Each part still walks its partial index (audit.SecurityEvent.Meta).
    reset_id = (
        SecurityEvent.objects.filter(user=user, kind__in=_RESETTING_KINDS)
        .order_by("-id")
        .values("id")[:1]
    )
    newest = (
        SecurityEvent.objects.filter(
            user=user,
            kind__in=_FAILURE_KINDS,
            factor=factor,
            id__gt=Coalesce(Subquery(reset_id), Value(0)),
        )
        .annotate(failures=Window(Count("id")))
        .order_by("-id")
        .values_list("failures", "created_at")
        .first()
    )
    return newest if newest is not None else (0, None)


def factor_throttle(*, user: User, factor: str, ip: str | None) -> FactorThrottle | None:
    """Refuse an attempt with ``factor`` (then it is neither checked nor counted), or allow it.

    The caller holds a lock on the user's row, so parallel attempts are judged one at a time.
    """
    if refusal := ip_throttle(factor=factor, ip=ip):
        return refusal
    failures, latest = consecutive_failures(user=user, factor=factor)
    if failures >= HARD_STOP.get(factor, 20):
        return FactorThrottle(factor=factor, reason=Reason.STOPPED)
    wait = backoff_wait(failures)
    if wait is None or latest is None:
        return None
    remaining = latest + wait - timezone.now()
    if remaining <= timedelta(0):
        return None
    return FactorThrottle(factor=factor, reason=Reason.WAIT, wait=remaining)


def ip_throttle(*, factor: str, ip: str | None) -> FactorThrottle | None:
    """Refuse when the client's address has had ``IP_LIMIT`` failures with ``factor`` (or
    ``PASSKEY``) in the window, whatever the account."""
    if ratelimit.allows(scope=_ip_scope(factor), key=ip or "unknown", limit=IP_LIMIT):
        return None
    return FactorThrottle(factor=factor, reason=Reason.IP)


def count_ip_failure(*, factor: str, ip: str | None) -> None:
    """Count a failed attempt against the client's address (the account's count is the
    SIGNIN_FAILED or REAUTH_FAILED event the caller writes)."""
    ratelimit.hit(scope=_ip_scope(factor), key=ip or "unknown", limit=IP_LIMIT)


def _ip_scope(factor: str) -> str:
    return f"second-factor-ip-{factor}"
