"""The second step of a sign-in: what a factor that passed leads to. ``SIGN_IN`` is the
sign-in's flow of the one factor step (``relatch.signin.factor``).

    password right, account has a second factor  -> partial sign-in (``partial.py``)
    security key                                 -> signed in at once (phishing-resistant)
    app code or recovery code, known device      -> signed in (a code is spent, then new codes)
    app code or recovery code, unknown device    -> held for the mailed link (``confirmation.py``);
                                                    a recovery code is NOT spent yet; past
                                                    the hour's links, held with none mailed
    ... from the browser of a self-service recovery: before its end -> its status page;
                                                     after           -> signed in, recovery done

Every attempt is a SecurityEvent with its factor (ASVS 16.3.1): SIGNIN_SUCCEEDED when the
sign-in completes, SIGNIN_FAILED per wrong factor, SIGNIN_THROTTLED when a limit refused it
unchecked (``relatch.mfa.throttling``). The first failure of a partial sign-in is also a
SECOND_FACTOR_FAILED, announced to the owner (``relatch.signin.factor.notices``).
"""

from datetime import datetime, timedelta

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone

from relatch.accounts.devices import ThisDevice, is_known_device, this_device
from relatch.accounts.models import User
from relatch.audit.models import EventKind, Factor
from relatch.mfa.factor_checks import FactorCheck
from relatch.mfa.models import NewDeviceConfirmation, RecoveryCode, SelfServiceRecovery
from relatch.mfa.queries import factor_summary
from relatch.mfa.selfservice import services as selfservice
from relatch.signin.factor.flow import FactorActions, StepOutcome, refused
from relatch.signin.factor.step import CODE_GONE, spend_code
from relatch.signin.newdevice import confirmation as confirmations
from relatch.signin.newdevice.partial import (
    PartialSignin,
    current_partial_signin,
    end_partial_signin,
    stored_next_url,
    update_partial_signin,
)
from relatch.signin.redirects import login_url
from relatch.signin.services import complete_signin

# Links mailed per account and hour: enough for typos and a second try, not a mail flood
# from someone who holds the password and one (unspent, so reusable) recovery code.
MAX_CONFIRMATIONS_PER_HOUR = 5


class SignInFlow:
    """The factor step of a sign-in: a pass finishes it, or holds it for the mailed link, or
    finishes a self-service recovery (``relatch.signin.factor.flow.FactorFlow``)."""

    throttled_as = "second_factor"  # how SIGNIN_THROTTLED events name this step
    announced_as = "signin"
    failure_kind = EventKind.SIGNIN_FAILED
    template = "signin/newdevice/second_step.html"
    actions = FactorActions(
        page="newdevice:second_step",
        key="newdevice:security_key",
        app="newdevice:app_code",
        code="newdevice:recovery_code",
    )
    restart_message = "Your sign-in expired or was not started. Enter your password again."

    def pending(self, request: HttpRequest) -> PartialSignin | None:
        return current_partial_signin(request)

    def start_again(self, request: HttpRequest) -> str:
        next_url = stored_next_url(request)
        end_partial_signin(request)
        return login_url(next_url)

    def offers_factors(self, pending: PartialSignin) -> bool:
        # Recovery codes alone still sign in an account whose factors were removed meanwhile.
        summary = factor_summary(user=pending.user)
        return summary.has_second_factor or bool(summary.codes and summary.codes.unused)

    def page_context(self, request: HttpRequest, pending: PartialSignin) -> dict[str, object]:
        user = pending.user
        recovery = selfservice.waiting_recovery_for_device(request=request, user=user)
        return {"username": user.username, "recovery": recovery}

    def failure_details(self, request: HttpRequest, user: User) -> dict[str, str | bool]:
        return {
            "step": "second_factor",
            "known_device": is_known_device(request=request, user=user),
        }

    def note_failure_told(self, request: HttpRequest, pending: PartialSignin) -> None:
        update_partial_signin(request, pending, failure_noted=True)

    def on_pass(
        self,
        *,
        request: HttpRequest,
        response: HttpResponse,
        pending: PartialSignin,
        user: User,
        check: FactorCheck,
    ) -> StepOutcome:
        return _passed(request, response, pending, user, check.factor, check.code)


SIGN_IN = SignInFlow()


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
    if code is not None and spend_code(request=request, user=user, code=code) is None:
        return refused(CODE_GONE)
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
            spent = code is None or (
                spend_code(request=request, user=recovery.user, code=code) is not None
            )
            if not spent:
                return refused(CODE_GONE)
            selfservice.complete_self_recovery(request=request, recovery=recovery)
    except selfservice.SelfRecoveryError as refusal:
        return refused(refusal.message, status=refusal.status)
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
    # Past the hour's links, none is mailed: that stops a mail flood by whoever holds the
    # password and a reusable code. The person still reaches the check-your-mail page, which
    # says so and keeps "I no longer have access to my email" (it needs no link).
    if held is None and _links_sent_last_hour(user) < MAX_CONFIRMATIONS_PER_HOUR:
        held = confirmations.start_confirmation(
            request=request,
            user=user,
            browser_digest=partial.browser_digest,
            factor=factor,
            recovery_code=code,
        )
    update_partial_signin(
        request,
        partial,
        passed_factor=factor,
        confirmation_id=held.pk if held else None,
        restart=True,
    )
    return check_mail


def next_link_at(user: User) -> datetime:
    """When a sign-in of ``user`` may be mailed a link again: once enough of the last hour's
    links are an hour old."""
    since = timezone.now() - timedelta(hours=1)
    sent = list(
        NewDeviceConfirmation.objects.filter(user=user, created_at__gte=since)
        .order_by("created_at")
        .values_list("created_at", flat=True)
    )
    if len(sent) < MAX_CONFIRMATIONS_PER_HOUR:
        return timezone.now()
    return sent[len(sent) - MAX_CONFIRMATIONS_PER_HOUR] + timedelta(hours=1)


def live_link_of_this_signin(partial: PartialSignin) -> NewDeviceConfirmation | None:
    """A link mailed during this partial sign-in and still usable: only a link made for this
    browser's nonce can finish it, not one of an earlier sign-in."""
    return (
        NewDeviceConfirmation.objects.filter(
            user=partial.user,
            browser_digest=partial.browser_digest,
            used_at__isnull=True,
            expires_at__gt=timezone.now(),
        )
        .order_by("-created_at")
        .first()
    )


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
