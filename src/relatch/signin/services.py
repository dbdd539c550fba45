"""Completing a sign-in, and signing out.

A sign-in runs in steps (``views``: the password; ``newdevice``: a second factor and, on a
browser the account does not know, the mailed check; ``passkey``: a passkey alone), and every
way in ends here:

    complete_signin(request=..., response=..., user=..., factor=Factor.PASSWORD)

Every attempt, refused, failed or successful, is a SecurityEvent with its factor (ASVS 16.3.1).
"""

from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.db import transaction
from django.http import HttpRequest, HttpResponse

from relatch.accounts.devices import ThisDevice, remember_device, this_device
from relatch.accounts.models import User, UserSession
from relatch.accounts.passwords import throttling
from relatch.accounts.reauth import mark_reauthenticated
from relatch.accounts.sessions.methods import method_label
from relatch.accounts.sessions.services import end_current_session, start_session
from relatch.audit.models import EventKind, Factor
from relatch.audit.services import record_event
from relatch.mfa.selfservice.services import cancel_on_trusted_signin


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
    method = method_label(factor, details or {})
    _leave_current_session(request)
    auth_login(request, user)
    remembered = remember_device(request=request, response=response, user=user,
                                 confirmed=confirm_device, known=device.row, method=method)
    row = start_session(request=request, user=user, device=remembered, method=method)
    mark_reauthenticated(request)
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


def _leave_current_session(request: HttpRequest) -> None:
    # auth.login keeps the session key when the same user signs in again; drop the old session
    # (and its row) so every sign-in starts a new one.
    if isinstance(request.user, User):
        end_current_session(request=request, user=request.user)
        request.session.flush()
