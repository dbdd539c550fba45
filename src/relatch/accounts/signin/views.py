"""Sign-in, sign-out and re-authentication pages."""

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from relatch.accounts.current import signed_in_user
from relatch.accounts.emails.middleware import verified_email_not_required
from relatch.accounts.models import User
from relatch.accounts.signin import services
from relatch.accounts.signin.forms import ReauthenticateForm, SignInForm
from relatch.audit.models import Factor
from relatch.mfa.newdevice.forms import SecurityKeyForm
from relatch.mfa.newdevice.partial import begin_partial_signin
from relatch.mfa.policy import has_second_factor
from relatch.mfa.reauth.services import confirm_password_then_factor

MAX_NEXT_LENGTH = 2000


def requested_next(request: HttpRequest) -> str:
    """The ``next`` asked for, when it stays on this site (no open redirect); else ""."""
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if len(candidate) > MAX_NEXT_LENGTH:
        return ""
    safe = url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return candidate if safe else ""


@login_not_required
@never_cache
@require_http_methods(["GET", "POST"])
def login(request: HttpRequest) -> HttpResponse:
    form = SignInForm(request.POST if request.method == "POST" else None)
    status = 200
    if form.is_valid():
        step = services.check_password_step(
            request=request,
            identifier=form.cleaned_data["identifier"],
            password=form.cleaned_data["password"],
        )
        if step.user is not None and has_second_factor(step.user):
            # Not signed in yet: the second step decides (relatch.mfa.newdevice).
            begin_partial_signin(request=request, user=step.user, next_url=requested_next(request))
            return redirect("newdevice:second_step")
        if step.user is not None:
            response = redirect(requested_next(request) or reverse("account:overview"))
            services.complete_signin(
                request=request, response=response, user=step.user, factor=Factor.PASSWORD
            )
            return response
        form.add_error(None, step.error())
        status = 429 if step.throttle else 200
    return _login_page(request, form, status=status)


def _login_page(request: HttpRequest, form: SignInForm, *, status: int = 200) -> HttpResponse:
    from relatch.mfa.webauthn.relying_party import rp_id_is_ip_address

    context = {
        "form": form,
        "next": requested_next(request),
        # Browsers refuse passkeys on a site reached by IP address: no link that cannot work.
        "passkeys": not rp_id_is_ip_address(),
    }
    return render(request, "accounts/signin/login.html", context, status=status)


def _passkey_page(request: HttpRequest, *, error: str = "", status: int = 200) -> HttpResponse:
    from relatch.mfa.webauthn.services import authentication_options

    # The challenge lives in the session, so it is made only on this page, for visitors who
    # chose a passkey: a bot fetching the sign-in page creates no session row.
    context = {
        "next": requested_next(request),
        "passkey_options": authentication_options(request=request, user=None),
        "passkey_error": error,
    }
    return render(request, "accounts/signin/passkey.html", context, status=status)


@login_not_required
@never_cache
@require_http_methods(["GET", "POST"])
def passkey(request: HttpRequest) -> HttpResponse:
    """Sign in with a passkey alone: the key names the account (no password, no new-device
    check: it is phishing-resistant and verified its user)."""
    from relatch.mfa.webauthn.passkey_signin import sign_in_with_passkey
    from relatch.mfa.webauthn.relying_party import rp_id_is_ip_address

    if rp_id_is_ip_address():
        return redirect("signin:login")
    if request.method == "GET":
        return _passkey_page(request)
    key_form = SecurityKeyForm(request.POST)
    if not key_form.is_valid():
        error = " ".join(str(e) for e in key_form.errors.get("credential", []))
        return _passkey_page(request, error=error, status=400)
    response = redirect(requested_next(request) or reverse("account:overview"))
    outcome = sign_in_with_passkey(
        request=request, response=response, credential_json=key_form.cleaned_data["credential"]
    )
    if outcome.user is None:
        return _passkey_page(request, error=outcome.message, status=outcome.status)
    return response


@login_not_required
@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    services.sign_out(request=request)
    messages.success(request, "You are signed out.")
    return redirect("home")


@verified_email_not_required
@never_cache
@require_http_methods(["GET", "POST"])
def reauthenticate(request: HttpRequest) -> HttpResponse:
    """Confirm it is you before a sensitive action (ASVS 7.5.1): the password; then, for an
    account with a second factor, one of its factors too (OWASP MFA6, NIST N13)."""
    user = signed_in_user(request)  # LoginRequiredMiddleware sent anonymous users away
    needs_factor = has_second_factor(user)
    form = ReauthenticateForm(request.POST if request.method == "POST" else None)
    status = 200
    if form.is_valid():
        password = form.cleaned_data["password"]
        step, go_to = _confirm_password(request, user, password, needs_factor=needs_factor)
        if step.user is not None:
            return redirect(go_to)
        form.add_error("password", step.error(services.WRONG_PASSWORD))
        status = 429 if step.throttle else 200
    context = {"form": form, "next": requested_next(request), "needs_factor": needs_factor}
    return render(request, "accounts/signin/reauthenticate.html", context, status=status)


def _confirm_password(
    request: HttpRequest, user: User, password: str, *, needs_factor: bool
) -> tuple[services.PasswordStep, str]:
    """Check the password; the second value is where to go when it was right: the factor
    step for an account with a second factor, otherwise the page asked for."""
    if needs_factor:
        step = confirm_password_then_factor(
            request=request, user=user, password=password, next_url=requested_next(request)
        )
        return step, reverse("signin:reauthenticate_factor")
    step = services.reauthenticate(request=request, user=user, password=password)
    return step, requested_next(request) or reverse("account:overview")
