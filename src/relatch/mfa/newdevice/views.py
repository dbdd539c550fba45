"""The second-step page, its three factor forms, the check-your-mail page and the mailed link."""

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from relatch.accounts.notices import verified_addresses
from relatch.accounts.sessions.useragents import describe_user_agent
from relatch.audit.models import Factor
from relatch.mfa.factor_page import FactorActions, factor_choices
from relatch.mfa.models import NewDeviceConfirmation
from relatch.mfa.newdevice import confirmation as confirmations
from relatch.mfa.newdevice import services
from relatch.mfa.newdevice.forms import AppCodeForm, RecoveryCodeForm, SecurityKeyForm
from relatch.mfa.newdevice.notices import factor_label
from relatch.mfa.newdevice.partial import (
    MAX_AGE,
    PartialSignin,
    current_partial_signin,
    end_partial_signin,
    stored_next_url,
)
from relatch.mfa.queries import factor_summary
from relatch.mfa.selfservice.services import STARTING_FACTORS, waiting_recovery_for_device
from relatch.web.referrer import keep_url_out_of_referrers

_TEMPLATES = "mfa/newdevice"


def _restart(request: HttpRequest) -> HttpResponse:
    """No partial sign-in here (never started, expired, or finished): back to the password."""
    next_url = stored_next_url(request)
    end_partial_signin(request)
    messages.info(request, "Your sign-in expired or was not started. Enter your password again.")
    login = reverse("signin:login")
    return redirect(f"{login}?{urlencode({'next': next_url})}" if next_url else login)


def _second_step_page(
    request: HttpRequest,
    partial: PartialSignin,
    *,
    error: str = "",
    status: int = 200,
    app_form: AppCodeForm | None = None,
    code_form: RecoveryCodeForm | None = None,
) -> HttpResponse:
    user = partial.user
    context = {
        **factor_choices(
            request, user, actions=_actions(), app_form=app_form, code_form=code_form
        ),
        "username": user.username,
        "error": error,
        "recovery": waiting_recovery_for_device(request=request, user=user),
        "expires_at": partial.expires_at,
    }
    return render(request, f"{_TEMPLATES}/second_step.html", context, status=status)


def _actions() -> FactorActions:
    return FactorActions(
        key=reverse("newdevice:security_key"),
        app=reverse("newdevice:app_code"),
        code=reverse("newdevice:recovery_code"),
    )


@login_not_required
@never_cache
@require_GET
def second_step(request: HttpRequest) -> HttpResponse:
    """Pick a factor: security key, app code or recovery code, whichever the account has."""
    partial = current_partial_signin(request)
    if partial is None:
        return _restart(request)
    summary = factor_summary(user=partial.user)
    if not summary.has_second_factor and not (summary.codes and summary.codes.unused):
        return _restart(request)  # its factors were removed meanwhile: the password alone will do
    return _second_step_page(request, partial)


def _respond(
    request: HttpRequest,
    partial: PartialSignin,
    outcome: services.StepOutcome,
    response: HttpResponse,
) -> HttpResponse:
    if outcome.kind == "refused":
        return _second_step_page(request, partial, error=outcome.message, status=outcome.status)
    if outcome.kind == "recovery_completed":
        messages.success(
            request,
            "The waiting period is over: you are signed in and this browser is now trusted. "
            "Add an email address you can read and verify it, then remove the one you lost.",
        )
        if outcome.used_code:
            messages.warning(
                request,
                "You used a recovery code: once your new address is verified, make a new set "
                "of recovery codes.",
            )
    if outcome.kind == "recovery_waiting":
        messages.info(request, "Your self-service recovery is still waiting; see below.")
    response["Location"] = outcome.redirect_to
    return response


@login_not_required
@never_cache
@require_POST
def app_code(request: HttpRequest) -> HttpResponse:
    partial = current_partial_signin(request)
    if partial is None:
        return _restart(request)
    form = AppCodeForm(request.POST, auto_id="id_app_%s")
    if not form.is_valid():
        return _second_step_page(request, partial, app_form=form, status=400)
    response = HttpResponseRedirect(reverse("account:overview"))
    outcome = services.sign_in_with_app_code(
        request=request, response=response, partial=partial, code=form.cleaned_data["code"]
    )
    if outcome.kind == "refused":
        form.add_error("code", outcome.message)  # at the field, which gets the focus
        return _second_step_page(request, partial, app_form=form, status=outcome.status)
    return _respond(request, partial, outcome, response)


@login_not_required
@never_cache
@require_POST
def recovery_code(request: HttpRequest) -> HttpResponse:
    partial = current_partial_signin(request)
    if partial is None:
        return _restart(request)
    form = RecoveryCodeForm(request.POST, auto_id="id_recovery_%s")
    if not form.is_valid():
        return _second_step_page(request, partial, code_form=form, status=400)
    response = HttpResponseRedirect(reverse("account:overview"))
    outcome = services.sign_in_with_recovery_code(
        request=request, response=response, partial=partial, code=form.cleaned_data["code"]
    )
    if outcome.kind == "refused":
        form.add_error("code", outcome.message)  # at the field, which gets the focus
        return _second_step_page(request, partial, code_form=form, status=outcome.status)
    return _respond(request, partial, outcome, response)


@login_not_required
@never_cache
@require_POST
def security_key(request: HttpRequest) -> HttpResponse:
    partial = current_partial_signin(request)
    if partial is None:
        return _restart(request)
    form = SecurityKeyForm(request.POST)
    if not form.is_valid():
        error = " ".join(str(e) for e in form.errors.get("credential", []))
        return _second_step_page(request, partial, error=error, status=400)
    response = HttpResponseRedirect(reverse("account:overview"))
    outcome = services.sign_in_with_security_key(
        request=request,
        response=response,
        partial=partial,
        credential_json=form.cleaned_data["credential"],
    )
    return _respond(request, partial, outcome, response)


@login_not_required
@never_cache
@require_GET
def check_mail(request: HttpRequest) -> HttpResponse:
    """The sign-in waits for the mailed link; or the user says the mailbox is gone."""
    partial = current_partial_signin(request)
    if partial is None or partial.confirmation_id is None:
        return _restart(request)
    held = NewDeviceConfirmation.objects.filter(pk=partial.confirmation_id).first()
    context = {
        "username": partial.user.username,
        "address_count": len(verified_addresses(partial.user)),
        "factor_label": factor_label(partial.passed_factor),
        "is_code": partial.passed_factor == Factor.RECOVERY_CODE,
        "link_expires_at": held.expires_at if held else None,
        "can_recover": partial.passed_factor in STARTING_FACTORS,
        "wait_hours": _wait_hours(),
        "partial_minutes": int(MAX_AGE.total_seconds() // 60),
    }
    return render(request, f"{_TEMPLATES}/check_mail.html", context)


def _wait_hours() -> int:
    return int(settings.SELF_RECOVERY_WAIT.total_seconds() // 3600)




@login_not_required
@never_cache
@require_http_methods(["GET", "POST"])
def confirm(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a button (mail scanners follow links; they must not sign anyone in); POST
    completes the sign-in, in the browser that started it, once."""
    try:
        if request.method == "POST":
            response = HttpResponseRedirect(reverse("account:overview"))
            signed = confirmations.confirm_new_device(
                request=request, response=response, token=token
            )
        else:
            held = confirmations.pending_confirmation(request=request, token=token)
    except confirmations.ConfirmationRefusedError as refusal:
        reason = {"reason": refusal.message, "code": refusal.code}
        page = render(request, f"{_TEMPLATES}/confirm_refused.html", reason, status=400)
        return keep_url_out_of_referrers(page)
    if request.method != "POST":
        client = describe_user_agent(held.user_agent)
        context = {
            "held": held,
            "client": client,
            "factor_label": factor_label(held.factor),
        }
        return keep_url_out_of_referrers(render(request, f"{_TEMPLATES}/confirm.html", context))
    messages.success(request, "You are signed in. This browser is now a trusted device.")
    if signed.factor == Factor.RECOVERY_CODE:
        response["Location"] = reverse("recovery_codes:replace_after_use")
    elif signed.next_url:
        response["Location"] = signed.next_url
    return response
