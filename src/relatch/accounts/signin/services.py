"""Sign-in, sign-out and re-authentication.

Sign-in runs in two steps so that a second factor (issue 3) can sit between them:

    step = check_password_step(request=..., identifier=..., password=...)
    if step.user is not None:            # password right; a 2FA step may come here
        complete_signin(request=..., response=..., user=step.user, factor=Factor.PASSWORD)

Every attempt, refused, failed or successful, is a SecurityEvent with its factor (ASVS 16.3.1).
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.contrib.auth import authenticate
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.db import transaction
from django.http import HttpRequest, HttpResponse

from relatch.accounts.devices import (
    ThisDevice,
    current_device_digest,
    is_known_device,
    remember_device,
    this_device,
)
from relatch.accounts.models import User, UserSession
from relatch.accounts.reauth import mark_reauthenticated
from relatch.accounts.sessions.services import current_digest, end_current_session, start_session
from relatch.accounts.signin import throttling
from relatch.accounts.signin.backends import find_user
from relatch.accounts.signin.throttling import Attempt, Throttle
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
    if throttle := throttling.before_password(attempt=attempt):
        _record_throttled(request, user, throttle, during="signin")
        return PasswordStep(user=None, throttle=throttle)
    # The backend hashes even for an unknown name, so timing does not tell them apart.
    authenticated = authenticate(request, username=identifier, password=password, found_user=user)
    if authenticated is None or user is None or authenticated.pk != user.pk:
        _record_failure(request, attempt, kind=EventKind.SIGNIN_FAILED, details={})
        return PasswordStep(user=None)
    throttling.forget_failures(user=user)
    return PasswordStep(user=user)


# savepoint=False: no caller catches an error from it and goes on, so a savepoint (two more
# statements) would buy nothing; an error still rolls the whole sign-in back.
@transaction.atomic(savepoint=False)
def complete_signin(
    *,
    request: HttpRequest,
    response: HttpResponse,
    user: User,
    factor: Factor,
    confirm_device: bool = False,
    details: dict[str, str | bool] | None = None,
    device: ThisDevice | None = None,
    no_recovery_waiting: bool = False,
) -> UserSession:
    """Sign ``user`` in after every factor passed: new session id (ASVS 7.2.4), a listed
    session, a fresh re-authentication, this browser remembered (``confirm_device``: as
    confirmed), failures forgotten. A second factor from a known device, or a security key,
    also cancels a waiting self-service recovery (the owner is evidently here).

    What the caller already read in this transaction is not read again: ``device``, this
    browser's row for ``user`` (``this_device``); ``no_recovery_waiting``, that the account had
    no waiting recovery when read under its row lock (which ``start_self_recovery`` takes too,
    so none can have started since)."""
    device = device if device is not None else this_device(request=request, user=user)
    _leave_current_session(request)
    auth_login(request, user)
    row = start_session(request=request, user=user)
    mark_reauthenticated(request)
    remember_device(
        request=request, response=response, user=user, confirmed=confirm_device, known=device.row
    )
    throttling.forget_failures(user=user)
    record_event(
        user=user,
        kind=EventKind.SIGNIN_SUCCEEDED,
        request=request,
        factor=factor,
        details={"new_device": not device.known, **(details or {})},
    )
    if not no_recovery_waiting:
        _cancel_waiting_recovery(request, user, factor, new_device=not device.known)
    return row


def _cancel_waiting_recovery(
    request: HttpRequest, user: User, factor: Factor, *, new_device: bool
) -> None:
    # Imported here: the mfa package builds on accounts, not the other way round.
    from relatch.mfa.selfservice.services import cancel_on_trusted_signin

    if factor == Factor.WEBAUTHN:
        cancel_on_trusted_signin(request=request, user=user, closed_by="security_key_signin")
    elif factor in (Factor.TOTP, Factor.RECOVERY_CODE) and not new_device:
        cancel_on_trusted_signin(request=request, user=user, closed_by="known_device_signin")


@transaction.atomic
def sign_out(*, request: HttpRequest) -> None:
    """End the current session: its row, its data, and a SIGNED_OUT event."""
    user = request.user
    if isinstance(user, User):
        end_current_session(request=request, user=user)
        record_event(user=user, kind=EventKind.SIGNED_OUT, request=request)
    auth_logout(request)


def confirm_password(
    *, request: HttpRequest, user: User, password: str, during: str
) -> PasswordStep:
    """Check the signed-in user's password (re-authentication, password change) under the same
    per-account, per-IP and per-device limits as sign-in; failures are REAUTH_FAILED events."""
    attempt = _attempt(request, user, user.username)
    if throttle := throttling.before_password(attempt=attempt):
        _record_throttled(request, user, throttle, during=during)
        return PasswordStep(user=None, throttle=throttle)
    if not (user.is_active and user.check_password(password)):
        _record_failure(request, attempt, kind=EventKind.REAUTH_FAILED, details={"during": during})
        return PasswordStep(user=None)
    throttling.forget_failures(user=user)
    return PasswordStep(user=user)


def reauthenticate(*, request: HttpRequest, user: User, password: str) -> PasswordStep:
    """Password again before a sensitive action (ASVS 7.5.1); on success a new session id.

    For an account WITHOUT a second factor only: one with a factor confirms the password with
    ``relatch.mfa.reauth.services.confirm_password_then_factor`` and then a factor.
    """
    step = confirm_password(request=request, user=user, password=password, during="reauth")
    if step.user is not None:
        finish_reauthentication(request=request, user=user)
    return step


@contextmanager
def session_row_follows_key(*, request: HttpRequest, user: User) -> Iterator[None]:
    """Around code that gives the session a new key (``cycle_key``, ``update_session_auth_hash``):
    move the UserSession row to the new key, or the tracking middleware would take the session
    for one that was ended and sign the user out."""
    old = current_digest(request)
    yield
    new = current_digest(request)
    if old and new and old != new:
        UserSession.objects.filter(user=user, session_digest=old).update(session_digest=new)


@transaction.atomic
def finish_reauthentication(
    *,
    request: HttpRequest,
    user: User,
    factor: Factor = Factor.PASSWORD,
    details: dict[str, str | bool] | None = None,
) -> None:
    """Every proof a re-authentication asks for passed (the password; for an account with a
    second factor, that factor too, ``relatch.mfa.reauth``): a new session id (ASVS 7.2.4),
    recently authenticated from now on, and a REAUTH_SUCCEEDED event with ``factor``."""
    with session_row_follows_key(request=request, user=user):
        request.session.cycle_key()  # a key seen before the proof is worth nothing after it
    mark_reauthenticated(request)
    record_event(
        user=user,
        kind=EventKind.REAUTH_SUCCEEDED,
        request=request,
        factor=factor,
        details=details or {},
    )


def _leave_current_session(request: HttpRequest) -> None:
    # auth.login keeps the session key when the same user signs in again; drop the old session
    # (and its row) so every sign-in starts a new one.
    if isinstance(request.user, User):
        end_current_session(request=request, user=request.user)
        request.session.flush()


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
    request: HttpRequest, attempt: Attempt, *, kind: EventKind, details: dict[str, str]
) -> None:
    throttling.count_failure(attempt=attempt)
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
