"""The second step of a sign-in: one factor after the password, and where it leads.

    password right, account has a second factor  -> partial sign-in (``partial.py``)
    security key                                 -> signed in at once (phishing-resistant)
    app code or recovery code, known device      -> signed in (a code is spent, then new codes)
    app code or recovery code, unknown device    -> held for the mailed link (``confirmation.py``);
                                                    a recovery code is NOT spent yet
    ... from the browser of a self-service recovery: before its end -> its status page;
                                                     after           -> signed in, recovery done

Every attempt is a SecurityEvent with its factor (ASVS 16.3.1): SIGNIN_SUCCEEDED when the
sign-in completes, SIGNIN_FAILED per wrong factor, SIGNIN_THROTTLED when a limit refused it
unchecked (``relatch.mfa.throttling``). The first failure of a partial sign-in is also a
SECOND_FACTOR_FAILED, announced to the owner (``notices.py``).
"""

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone

from relatch.accounts.devices import ThisDevice, is_known_device, this_device
from relatch.accounts.models import User
from relatch.accounts.signin.services import complete_signin
from relatch.audit.models import EventKind, Factor
from relatch.mfa.factor_checks import (
    FactorCheck,
    check_app_code,
    check_recovery_code,
    check_security_key,
    lock_account,
    record_factor_failure,
)
from relatch.mfa.models import NewDeviceConfirmation, RecoveryCode, SelfServiceRecovery
from relatch.mfa.newdevice import confirmation as confirmations
from relatch.mfa.newdevice.notices import note_second_factor_failure
from relatch.mfa.newdevice.partial import PartialSignin, end_partial_signin, update_partial_signin
from relatch.mfa.selfservice import services as selfservice

_DURING = "second_factor"  # how SIGNIN_THROTTLED events name this step
# Links mailed per account and hour: enough for typos and a second try, not a mail flood
# from someone who holds the password and one (unspent, so reusable) recovery code.
MAX_CONFIRMATIONS_PER_HOUR = 5

type OutcomeKind = Literal[
    "signed_in", "check_mail", "recovery_waiting", "recovery_completed", "refused"
]


@dataclass(frozen=True)
class StepOutcome:
    """What an attempt led to: where the browser goes next, or why it was refused."""

    kind: OutcomeKind
    redirect_to: str = ""
    message: str = ""
    status: int = 200
    used_code: bool = False


def _refused(message: str, status: int = 200) -> StepOutcome:
    return StepOutcome(kind="refused", message=message, status=status)


@transaction.atomic
def sign_in_with_app_code(
    *, request: HttpRequest, response: HttpResponse, partial: PartialSignin, code: str
) -> StepOutcome:
    """The second step with an authenticator app code (already well-formed, see the form)."""
    user = lock_account(partial.user)
    check = check_app_code(request=request, user=user, code=code, during=_DURING)
    return _after_check(request, response, partial, user, check)


@transaction.atomic
def sign_in_with_recovery_code(
    *, request: HttpRequest, response: HttpResponse, partial: PartialSignin, code: str
) -> StepOutcome:
    """The second step with a recovery code; it is spent only when the sign-in completes."""
    user = lock_account(partial.user)
    check = check_recovery_code(request=request, user=user, code=code, during=_DURING)
    return _after_check(request, response, partial, user, check)


@transaction.atomic
def sign_in_with_security_key(
    *, request: HttpRequest, response: HttpResponse, partial: PartialSignin, credential_json: str
) -> StepOutcome:
    """The second step with a security key: phishing-resistant, so no new-device check."""
    user = lock_account(partial.user)
    check = check_security_key(
        request=request, user=user, credential_json=credential_json, during=_DURING
    )
    return _after_check(request, response, partial, user, check)


def _after_check(
    request: HttpRequest,
    response: HttpResponse,
    partial: PartialSignin,
    user: User,
    check: FactorCheck,
) -> StepOutcome:
    if check.passed:
        return _passed(request, response, partial, user, check.factor, check.code)
    if check.counted:
        return _failed(request, partial, user, check)
    return _refused(check.message, status=check.status)  # a limit, or not an attempt at all


def _failed(
    request: HttpRequest, partial: PartialSignin, user: User, check: FactorCheck
) -> StepOutcome:
    record_factor_failure(
        request=request,
        user=user,
        check=check,
        kind=EventKind.SIGNIN_FAILED,
        details={
            "step": "second_factor",
            "known_device": is_known_device(request=request, user=user),
        },
    )
    if not partial.failure_noted:
        note_second_factor_failure(request=request, user=user, factor=check.factor)
        update_partial_signin(request, partial, failure_noted=True)
    return _refused(check.message)


def _passed(
    request: HttpRequest,
    response: HttpResponse,
    partial: PartialSignin,
    user: User,
    factor: Factor,
    code: RecoveryCode | None = None,
) -> StepOutcome:
    if factor == Factor.WEBAUTHN:
        return _sign_in(request, response, partial, user, factor, code)
    # Read once under the account's row lock (``lock_account``), then handed on, not re-read.
    waiting = selfservice.waiting_recovery(user)
    recovery = selfservice.started_by_this_browser(request=request, recovery=waiting)
    if recovery is not None and recovery.ends_at > timezone.now():
        return StepOutcome(kind="recovery_waiting", redirect_to=reverse("selfrecovery:status"))
    if recovery is not None:
        return _complete_recovery(request, response, partial, recovery, code)
    device = this_device(request=request, user=user)
    if not device.known:
        return _hold_for_confirmation(request, partial, user, factor, code)
    return _sign_in(
        request, response, partial, user, factor, code, device, no_recovery=waiting is None
    )


def _sign_in(
    request: HttpRequest,
    response: HttpResponse,
    partial: PartialSignin,
    user: User,
    factor: Factor,
    code: RecoveryCode | None,
    device: ThisDevice | None = None,
    *,
    no_recovery: bool = False,
) -> StepOutcome:
    if code is not None and not _spend(request, user, code):
        return _refused(_CODE_GONE)
    complete_signin(
        request=request,
        response=response,
        user=user,
        factor=factor,
        device=device,
        no_recovery_waiting=no_recovery,
    )
    end_partial_signin(request)
    if code is not None:
        return StepOutcome(
            kind="signed_in",
            redirect_to=reverse("recovery_codes:replace_after_use"),
            used_code=True,
        )
    return StepOutcome(
        kind="signed_in", redirect_to=partial.next_url or reverse("account:overview")
    )


_CODE_GONE = "That recovery code was just used. Enter another one."


def _spend(request: HttpRequest, user: User, code: RecoveryCode) -> bool:
    from relatch.mfa.recovery_codes.services import (
        RecoveryCodeAlreadyUsedError,
        spend_recovery_code,
    )

    try:
        spend_recovery_code(request=request, user=user, code=code)
    except RecoveryCodeAlreadyUsedError:  # the same code in two tabs at once: one wins
        return False
    return True


def _complete_recovery(
    request: HttpRequest,
    response: HttpResponse,
    partial: PartialSignin,
    recovery: SelfServiceRecovery,
    code: RecoveryCode | None,
) -> StepOutcome:
    factor = Factor.RECOVERY_CODE if code is not None else Factor.TOTP
    try:
        # A savepoint: a refused completion (the account was frozen meanwhile) leaves the
        # recovery code unspent and the recovery waiting, as if nothing had been tried.
        with transaction.atomic():
            if code is not None and not _spend(request, recovery.user, code):
                return _refused(_CODE_GONE)
            selfservice.complete_self_recovery(request=request, recovery=recovery)
    except selfservice.SelfRecoveryError as refusal:
        return _refused(refusal.message, status=refusal.status)
    complete_signin(
        request=request,
        response=response,
        user=recovery.user,
        factor=factor,
        confirm_device=True,
        details={"confirmed_by": "self_recovery"},
    )
    end_partial_signin(request)
    return StepOutcome(
        kind="recovery_completed", redirect_to=reverse("emails:manage"), used_code=code is not None
    )


def _hold_for_confirmation(
    request: HttpRequest,
    partial: PartialSignin,
    user: User,
    factor: Factor,
    code: RecoveryCode | None,
) -> StepOutcome:
    check_mail = StepOutcome(kind="check_mail", redirect_to=reverse("newdevice:check_mail"))
    held = _pending_for(partial, factor)
    if held is None:
        if _links_sent_last_hour(user) >= MAX_CONFIRMATIONS_PER_HOUR:
            return _refused(
                "We mailed several sign-in links in the last hour: use the newest one, or try "
                "again in an hour.",
                status=429,
            )
        held = confirmations.start_confirmation(
            request=request,
            user=user,
            browser_digest=partial.browser_digest,
            factor=factor,
            recovery_code=code,
        )
    update_partial_signin(
        request, partial, passed_factor=factor, confirmation_id=held.pk, restart=True
    )
    return check_mail


def _pending_for(partial: PartialSignin, factor: Factor) -> NewDeviceConfirmation | None:
    """This partial sign-in's unexpired link for ``factor``: sending the form again mails no
    second link."""
    if partial.confirmation_id is None:
        return None
    return NewDeviceConfirmation.objects.filter(
        pk=partial.confirmation_id,
        user=partial.user,
        factor=factor,
        used_at__isnull=True,
        expires_at__gt=timezone.now(),
    ).first()


def _links_sent_last_hour(user: User) -> int:
    since = timezone.now() - timedelta(hours=1)
    return NewDeviceConfirmation.objects.filter(user=user, created_at__gte=since).count()
