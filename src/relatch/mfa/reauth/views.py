"""The second half of a full re-authentication: the account's factors, after its password.

Reached from ``signin:reauthenticate`` once the password of an account with a second factor
was right; the URLs live in the ``signin`` namespace next to it.
"""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from relatch.accounts.current import signed_in_user
from relatch.accounts.emails.middleware import verified_email_not_required
from relatch.accounts.reauth import reauthenticate_url
from relatch.mfa.factor_page import FactorActions, factor_choices
from relatch.mfa.newdevice.forms import AppCodeForm, RecoveryCodeForm, SecurityKeyForm
from relatch.mfa.policy import has_second_factor
from relatch.mfa.reauth import services
from relatch.mfa.reauth.state import FactorStep, current_factor_step, stored_next_url

_TEMPLATE = "mfa/reauth/factor_step.html"


def _restart(request: HttpRequest) -> HttpResponse:
    """No confirmed password here (never given, expired, or used): back to the password."""
    messages.info(request, "Confirm your password again, then use your second factor.")
    next_url = stored_next_url(request)
    return redirect(reauthenticate_url(next_url) if next_url else reverse("signin:reauthenticate"))


def _actions() -> FactorActions:
    return FactorActions(
        key=reverse("signin:reauthenticate_key"),
        app=reverse("signin:reauthenticate_app"),
        code=reverse("signin:reauthenticate_code"),
    )


def _page(
    request: HttpRequest,
    step: FactorStep,
    *,
    error: str = "",
    status: int = 200,
    app_form: AppCodeForm | None = None,
    code_form: RecoveryCodeForm | None = None,
) -> HttpResponse:
    user = signed_in_user(request)
    choices = factor_choices(
        request, user, actions=_actions(), app_form=app_form, code_form=code_form
    )
    context = {**choices, "error": error, "expires_at": step.expires_at}
    return render(request, _TEMPLATE, context, status=status)


def _respond(
    request: HttpRequest, step: FactorStep, outcome: services.ReauthOutcome
) -> HttpResponse:
    if not outcome.passed:
        return _page(request, step, error=outcome.message, status=outcome.status)
    if outcome.codes_left is not None:
        # NIST N2: a used code is replaced; the user goes on with what they came to do.
        messages.warning(
            request,
            f"You used a recovery code: it no longer works, and {outcome.codes_left} are left. "
            "Make a new set now, on the Recovery codes page of your account.",
        )
    return redirect(step.next_url or reverse("account:overview"))


def _current_step(request: HttpRequest) -> FactorStep | None:
    return current_factor_step(request, user=signed_in_user(request))


@verified_email_not_required
@never_cache
@require_GET
def factor_step(request: HttpRequest) -> HttpResponse:
    """Pick a factor: security key, app code or recovery code, whichever the account has."""
    step = _current_step(request)
    if step is None or not has_second_factor(signed_in_user(request)):
        # Its factors were removed meanwhile: the password page alone will do.
        return _restart(request)
    return _page(request, step)


@verified_email_not_required
@never_cache
@require_POST
def app_code(request: HttpRequest) -> HttpResponse:
    step = _current_step(request)
    if step is None:
        return _restart(request)
    form = AppCodeForm(request.POST, auto_id="id_app_%s")
    if not form.is_valid():
        return _page(request, step, app_form=form, status=400)
    outcome = services.reauthenticate_with_app_code(
        request=request, user=signed_in_user(request), step=step, code=form.cleaned_data["code"]
    )
    if not outcome.passed:
        form.add_error("code", outcome.message)  # at the field, which gets the focus
        return _page(request, step, app_form=form, status=outcome.status)
    return _respond(request, step, outcome)


@verified_email_not_required
@never_cache
@require_POST
def recovery_code(request: HttpRequest) -> HttpResponse:
    step = _current_step(request)
    if step is None:
        return _restart(request)
    form = RecoveryCodeForm(request.POST, auto_id="id_recovery_%s")
    if not form.is_valid():
        return _page(request, step, code_form=form, status=400)
    outcome = services.reauthenticate_with_recovery_code(
        request=request, user=signed_in_user(request), step=step, code=form.cleaned_data["code"]
    )
    if not outcome.passed:
        form.add_error("code", outcome.message)  # at the field, which gets the focus
        return _page(request, step, code_form=form, status=outcome.status)
    return _respond(request, step, outcome)


@verified_email_not_required
@never_cache
@require_POST
def security_key(request: HttpRequest) -> HttpResponse:
    step = _current_step(request)
    if step is None:
        return _restart(request)
    form = SecurityKeyForm(request.POST)
    if not form.is_valid():
        error = " ".join(str(e) for e in form.errors.get("credential", []))
        return _page(request, step, error=error, status=400)
    outcome = services.reauthenticate_with_security_key(
        request=request,
        user=signed_in_user(request),
        step=step,
        credential_json=form.cleaned_data["credential"],
    )
    return _respond(request, step, outcome)
