"""A password checked under the guessing limits (``throttling``), for every form that asks for one.

    step = check_password_step(request=..., identifier=..., password=...)  # the sign-in form
    step = confirm_password(request=..., user=..., password=..., during=...)  # signed in, again
    if step.user is None: form.add_error(..., step.error(...))              # wrong, or throttled

Nothing here signs anyone in: the sign-in app decides what a right password leads to. Every
attempt, refused, failed or successful, is a SecurityEvent with its factor (ASVS 16.3.1).
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.contrib.auth import authenticate
from django.db import transaction
from django.http import HttpRequest

from relatch.accounts.devices import current_device_digest, is_known_device
from relatch.accounts.models import User
from relatch.accounts.passwords import throttling
from relatch.accounts.passwords.throttling import Admission, Attempt, Throttle
from relatch.accounts.signin.backends import find_user
from relatch.audit.models import EventKind, Factor
from relatch.audit.services import record_event
from relatch.web.client import client_ip

# One message for an unknown account, a wrong password and a disabled account (ASVS 6.3.8).
WRONG_CREDENTIALS = "Username or password is wrong."
WRONG_PASSWORD = "That password is wrong."  # noqa: S105 (a message, not a secret)


@dataclass(frozen=True)
class PasswordStep:
    """The outcome of one password check: ``user`` only when the password was right."""

    user: User | None
    throttle: Throttle | None = None

    def error(self, wrong: str = WRONG_CREDENTIALS) -> str:
        return self.throttle.message if self.throttle else wrong


def check_password_step(*, request: HttpRequest, identifier: str, password: str) -> PasswordStep:
    """Check a sign-in form's username-or-email and password under the throttling rules.

    Refused attempts never reach the password check. Nothing is signed in here.
    """
    user = find_user(identifier)
    attempt = _attempt(request, user, identifier)
    admission = throttling.before_password(attempt=attempt)
    if throttle := admission.throttle:
        _record_throttled(request, user, throttle, during="signin")
        return PasswordStep(user=None, throttle=throttle)
    with _settled_on_error(admission):
        # The backend hashes even for an unknown name, so timing does not tell them apart.
        authenticated = authenticate(
            request, username=identifier, password=password, found_user=user
        )
        if authenticated is None or user is None or authenticated.pk != user.pk:
            _record_failure(request, attempt, admission, kind=EventKind.SIGNIN_FAILED, details={})
            return PasswordStep(user=None)
        throttling.count_success(user=user, admission=admission)
    return PasswordStep(user=user)


def confirm_password(
    *, request: HttpRequest, user: User, password: str, during: str
) -> PasswordStep:
    """Check the signed-in user's password (re-authentication, password change) under the same
    per-account, per-IP and per-device limits as sign-in; failures are REAUTH_FAILED events."""
    attempt = _attempt(request, user, user.username)
    admission = throttling.before_password(attempt=attempt)
    if throttle := admission.throttle:
        _record_throttled(request, user, throttle, during=during)
        return PasswordStep(user=None, throttle=throttle)
    with _settled_on_error(admission):
        if not (user.is_active and user.check_password(password)):
            details = {"during": during}
            _record_failure(request, attempt, admission, kind=EventKind.REAUTH_FAILED,
                            details=details)
            return PasswordStep(user=None)
        throttling.count_success(user=user, admission=admission)
    return PasswordStep(user=user)


@contextmanager
def _settled_on_error(admission: Admission) -> Iterator[None]:
    """An error between admission and verdict frees the attempt's places at once, rather than
    leaving them to hold up other attempts until they go stale."""
    try:
        yield
    except BaseException:
        throttling.release(admission=admission)
        raise


def _attempt(request: HttpRequest, user: User | None, identifier: str) -> Attempt:
    known = user is not None and is_known_device(request=request, user=user)
    return Attempt(
        user=user,
        identifier=identifier,
        ip=client_ip(request),
        known_device=current_device_digest(request) if known else None,
    )


@transaction.atomic
def _record_failure(
    request: HttpRequest,
    attempt: Attempt,
    admission: Admission,
    *,
    kind: EventKind,
    details: dict[str, str],
) -> None:
    throttling.count_failure(attempt=attempt, admission=admission)
    if attempt.user is not None:
        record_event(
            user=attempt.user,
            kind=kind,
            request=request,
            factor=Factor.PASSWORD,
            details={**details, "known_device": attempt.known_device is not None},
        )


@transaction.atomic
def _record_throttled(
    request: HttpRequest, user: User | None, throttle: Throttle, *, during: str
) -> None:
    if user is not None:
        record_event(
            user=user,
            kind=EventKind.SIGNIN_THROTTLED,
            request=request,
            factor=Factor.PASSWORD,
            details={"reason": str(throttle.reason), "during": during},
        )
