"""The authenticator app of an account: enrol (confirmed by a code), check a code, remove.

The secret waits, sealed, in the session until a code proves the app has it; only then does a
TotpDevice row exist. Every accepted code moves ``last_used_step`` forward, so a code (or an
older one) is never accepted twice (NIST N26, ASVS 6.5.1).
"""

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from relatch.accounts.freeze import AccountFrozenError, refuse_if_frozen
from relatch.accounts.models import User
from relatch.accounts.notices import announce_to_account
from relatch.audit.models import EventKind, Factor
from relatch.audit.services import record_event
from relatch.mfa.models import TotpDevice
from relatch.mfa.policy import has_second_factor, refusal_to_remove_factor
from relatch.mfa.reminders import schedule_factor_reminder
from relatch.mfa.totp import primitive

# Long enough to find the phone and scan; short enough that a secret left on an unattended
# screen stops being worth photographing (NIST N16 keeps binding codes to 10 minutes too).
PENDING_MAX_AGE = 10 * 60
_PENDING_KEY = "relatch_totp_pending"

type CheckReason = Literal["ok", "wrong", "replayed", "clock_skew", "malformed", "no_device"]

MALFORMED = "Enter the 6-digit code your authenticator app shows now."
WRONG = (
    "That code is not right. Check that the app's entry says Relatch and your username, "
    "and enter the code it shows now."
)
REPLAYED = (
    "That code was already used: each code works once. Wait for your app to show the next "
    "code, then enter it."
)
NO_DEVICE = "This account has no authenticator app. Use another way to sign in."
ENROL_ACTION = "Setting up an authenticator app"


@dataclass(frozen=True)
class TotpCheck:
    """What a code was worth: ``ok``, why not (``reason``), and what to tell the user."""

    ok: bool
    reason: CheckReason
    message: str


class TotpError(Exception):
    """A change the rules refuse; ``message`` says why. Nothing was changed."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class PendingEnrolment:
    """A secret shown to the user, not yet confirmed by a code from their app."""

    secret: str
    started_at: int  # Unix time

    @property
    def expires_in(self) -> int:
        return max(0, self.started_at + PENDING_MAX_AGE - int(time.time()))


def _refuse_if_frozen(user: User, action: str) -> None:
    """While the account is frozen its app stays as it is: a hijacker holding a session can
    neither bind an app of theirs nor remove the owner's (DESIGN §5)."""
    try:
        refuse_if_frozen(user=user, action=action)
    except AccountFrozenError as frozen:
        raise TotpError(frozen.message) from frozen


def _bound_to(user: User) -> str:
    return f"totp:user:{user.pk}"


def _pending_bound_to(user: User) -> str:
    return f"totp:pending:user:{user.pk}"


def skew_message(offset: int) -> str:
    """The user-facing words for a code ``offset`` steps away from the server's time."""
    # Rounded half up (Python's round() would make 2.5 minutes "2").
    minutes = max(1, (abs(offset) * primitive.STEP_SECONDS + 30) // 60)
    direction = "ahead of" if offset > 0 else "behind"
    return (
        f"That code matches a time about {minutes} minute{'s' if minutes != 1 else ''} "
        f"{direction} ours: your device's clock may be off. Set it to update automatically, "
        "then enter the new code."
    )


def _judge(
    *, secret: str, code: str, now: datetime, last_used_step: int
) -> tuple[TotpCheck, int | None]:
    """The verdict on an already well-formed ``code``, and the step to record when it is ok."""
    match = primitive.match_step(secret=secret, code=code, now=now, window=primitive.ACCEPT_WINDOW)
    if match is not None:
        if match.step <= last_used_step:
            return TotpCheck(ok=False, reason="replayed", message=REPLAYED), None
        return TotpCheck(ok=True, reason="ok", message=""), match.step
    skew = primitive.match_step(secret=secret, code=code, now=now, window=primitive.SKEW_WINDOW)
    if skew is not None:
        return TotpCheck(ok=False, reason="clock_skew", message=skew_message(skew.offset)), None
    return TotpCheck(ok=False, reason="wrong", message=WRONG), None


def verify_totp(
    *, request: HttpRequest | None, user: User, code: str, now: datetime | None = None
) -> TotpCheck:
    """Check ``code`` against the account's app, by the server clock (ASVS 6.5.8).

    On ok the matched step is recorded, so it and every older step are refused from now on
    (NIST N26). Writes no SecurityEvent: the sign-in flow records the attempt with its factor.
    ``now`` is for tests only (a fixed instant instead of a race with the step boundary).
    Raises primitive.SecretUnreadableError when the server's key cannot open the stored secret.
    """
    return _verify(user=user, code=code, now=now or timezone.now())


@transaction.atomic
def _verify(*, user: User, code: str, now: datetime) -> TotpCheck:
    # The row lock makes two requests with the same code queue up: only the first passes.
    device = TotpDevice.objects.select_for_update().filter(user=user).first()
    if device is None:
        return TotpCheck(ok=False, reason="no_device", message=NO_DEVICE)
    normalized = primitive.normalize_code(code)
    if normalized is None:
        return TotpCheck(ok=False, reason="malformed", message=MALFORMED)
    secret = primitive.unseal(device.encrypted_secret, bound_to=_bound_to(user))
    check, step = _judge(
        secret=secret, code=normalized, now=now, last_used_step=device.last_used_step
    )
    if step is not None:
        device.last_used_step = step
        device.last_used_at = now
        device.save(update_fields=["last_used_step", "last_used_at"])
    return check


# --- enrolment ------------------------------------------------------------------------------


def pending_enrolment(request: HttpRequest, user: User) -> PendingEnrolment | None:
    """The secret being enrolled in this session, unless there is none or it expired."""
    stored = request.session.get(_PENDING_KEY)
    if not isinstance(stored, dict) or stored.get("user") != user.pk:
        return None
    started_at = stored.get("started_at")
    if not isinstance(started_at, int) or time.time() - started_at > PENDING_MAX_AGE:
        return None
    try:
        secret = primitive.unseal(str(stored.get("sealed")), bound_to=_pending_bound_to(user))
    except primitive.SecretUnreadableError:
        return None
    return PendingEnrolment(secret=secret, started_at=started_at)


def start_enrolment(request: HttpRequest, user: User) -> PendingEnrolment:
    """The pending secret of this session, or a fresh one. Kept sealed in the (server-side)
    session: the session table is no place for a plaintext secret either.

    Raises TotpError for a frozen account: no secret is shown that could not be bound.
    """
    _refuse_if_frozen(user, ENROL_ACTION)
    pending = pending_enrolment(request, user)
    if pending is not None:
        return pending
    pending = PendingEnrolment(secret=primitive.new_secret(), started_at=int(time.time()))
    request.session[_PENDING_KEY] = {
        "user": user.pk,
        "started_at": pending.started_at,
        "sealed": primitive.seal(pending.secret, bound_to=_pending_bound_to(user)),
    }
    return pending


def _drop_pending(request: HttpRequest) -> None:
    request.session.pop(_PENDING_KEY, None)


def _lock(user: User) -> None:
    """Serialize factor changes of one account: two removals at once must not both see
    "another factor remains", and a double submit must not enrol twice."""
    User.objects.select_for_update().filter(pk=user.pk).first()


def _require_saved_codes(user: User) -> None:
    # Imported here: recovery codes are their own package and import the factor policy.
    from relatch.mfa.recovery_codes.services import has_confirmed_codes

    if not has_second_factor(user) and not has_confirmed_codes(user):
        raise TotpError(
            "Save your recovery codes first: they are your way back in if you lose your phone."
        )


@transaction.atomic
def confirm_enrolment(*, request: HttpRequest, user: User, code: str) -> TotpDevice:
    """Bind the session's pending secret once ``code`` proves the app has it.

    An existing app is replaced in the same step: the new one works, the old one stops (NIST
    N29). The accepted step is recorded, so the confirming code cannot sign in again. Raises
    TotpError (the pending secret is kept, so the user can try another code).
    """
    _lock(user)
    _refuse_if_frozen(user, ENROL_ACTION)
    pending = pending_enrolment(request, user)
    if pending is None:
        raise TotpError(
            "This setup expired (a new secret is valid for 10 minutes). Scan the new QR code "
            "below and enter the code your app shows."
        )
    _require_saved_codes(user)
    normalized = primitive.normalize_code(code)
    if normalized is None:
        raise TotpError(MALFORMED)
    check, step = _judge(
        secret=pending.secret, code=normalized, now=timezone.now(), last_used_step=0
    )
    if step is None:
        raise TotpError(check.message)
    device = _bind(request=request, user=user, secret=pending.secret, step=step)
    _drop_pending(request)
    return device


def _bind(*, request: HttpRequest, user: User, secret: str, step: int) -> TotpDevice:
    first_factor = not has_second_factor(user)
    replaced = TotpDevice.objects.filter(user=user).delete()[0] > 0
    if replaced:
        record_event(
            user=user,
            kind=EventKind.TOTP_REMOVED,
            request=request,
            factor=Factor.TOTP,
            details={"replaced": True},
        )
    device = TotpDevice.objects.create(
        user=user,
        encrypted_secret=primitive.seal(secret, bound_to=_bound_to(user)),
        last_used_step=step,
        last_used_at=timezone.now(),
    )
    record_event(
        user=user,
        kind=EventKind.TOTP_ADDED,
        request=request,
        factor=Factor.TOTP,
        details={"replaced_previous": replaced},
    )
    announce_to_account(user=user, template="totp_added", context={"replaced": replaced})
    if first_factor:
        schedule_factor_reminder(user=user)
    return device


@transaction.atomic
def remove_totp(*, request: HttpRequest | None, user: User) -> None:
    """Remove the account's app (also the first half of moving to a new phone).

    Refused, with the policy's reason, when it is the last second factor of an account that
    needs one. Announced to every verified address (NIST N14).
    """
    _lock(user)
    _refuse_if_frozen(user, "Removing an authenticator app")
    device = TotpDevice.objects.filter(user=user).first()
    if device is None:
        raise TotpError("Your account has no authenticator app (it may have been removed).")
    remaining = user.webauthn_credentials.count()
    refusal = refusal_to_remove_factor(user=user, remaining_after=remaining)
    if refusal is not None:
        raise TotpError(refusal)
    device.delete()
    record_event(
        user=user,
        kind=EventKind.TOTP_REMOVED,
        request=request,
        factor=Factor.TOTP,
        details={"second_factors_left": remaining},
    )
    announce_to_account(user=user, template="totp_removed", context={"keys_left": remaining})
