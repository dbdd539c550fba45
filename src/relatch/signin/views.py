"""The sign-in page (the password step), passkey sign-in, and signing out."""

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from relatch.accounts.passwords.checks import check_password_step
from relatch.audit.models import Factor
from relatch.mfa.forms import SecurityKeyForm
from relatch.mfa.policy import has_second_factor
from relatch.mfa.webauthn.relying_party import rp_id_is_ip_address
from relatch.mfa.webauthn.services import authentication_options
from relatch.signin import services
from relatch.signin.forms import SignInForm
from relatch.signin.newdevice.partial import begin_partial_signin
from relatch.signin.passkey import sign_in_with_passkey
from relatch.signin.redirects import requested_next


@login_not_required
@never_cache
@require_http_methods(["GET", "POST"])
def login(request: HttpRequest) -> HttpResponse:
    """The password step: a right password signs in, or, for an account with a second factor,
    starts the second step (``newdevice``), which signs in."""
    form = SignInForm(request.POST if request.method == "POST" else None,
                      prefill=request.GET.get("username", ""))
    status = 200
    if form.is_valid():
        step = check_password_step(
            request=request,
            identifier=form.cleaned_data["identifier"],
            password=form.cleaned_data["password"],
        )
        if step.user is not None and has_second_factor(step.user):
            # Not signed in yet: the second step decides (relatch.signin.newdevice).
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
    context = {
        "form": form,
        "next": requested_next(request),
        # Browsers refuse passkeys on a site reached by IP address: no link that cannot work.
        "passkeys": not rp_id_is_ip_address(),
    }
    return render(request, "signin/login.html", context, status=status)


def _passkey_page(request: HttpRequest, *, error: str = "", status: int = 200) -> HttpResponse:
    # The challenge lives in the session, so it is made only on this page, for visitors who
    # chose a passkey: a bot fetching the sign-in page creates no session row.
    context = {
        "next": requested_next(request),
        "passkey_options": authentication_options(request=request, user=None),
        "passkey_error": error,
    }
    return render(request, "signin/passkey.html", context, status=status)


@login_not_required
@never_cache
@require_http_methods(["GET", "POST"])
def passkey(request: HttpRequest) -> HttpResponse:
    """Sign in with a passkey alone: the key names the account (no password, no new-device
    check: it is phishing-resistant and verified its user)."""
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
@never_cache
@require_POST
def passkey_options(request: HttpRequest) -> HttpResponse:
    """Options for the sign-in page's passkey autofill (WebAuthn conditional mediation).

    Its script asks for them, so the plain page still starts no session. A POST with the
    page's CSRF token: another site cannot replace this browser's challenge, nor make a
    session row per link a crawler follows. The answer goes to ``passkey`` (same checks).
    """
    if rp_id_is_ip_address():
        return JsonResponse({"error": "Passkeys do not work on a site reached by IP address."},
                            status=404)
    return JsonResponse(authentication_options(request=request, user=None))


@login_not_required
@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    """Sign out: end this session and go to the home page."""
    services.sign_out(request=request)
    messages.success(request, "You are signed out.")
    return redirect("home")
