"""Sign-in, sign-out and re-authentication pages."""

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from relatch.accounts.emails.middleware import verified_email_not_required
from relatch.accounts.models import User
from relatch.accounts.signin import services
from relatch.accounts.signin.forms import ReauthenticateForm, SignInForm
from relatch.audit.models import Factor
from relatch.mfa.newdevice.partial import begin_partial_signin
from relatch.mfa.policy import has_second_factor

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
    context = {"form": form, "next": requested_next(request)}
    return render(request, "accounts/signin/login.html", context, status=status)


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
    assert isinstance(request.user, User)  # LoginRequiredMiddleware sent anonymous users away
    form = ReauthenticateForm(request.POST if request.method == "POST" else None)
    status = 200
    if form.is_valid():
        step = services.reauthenticate(
            request=request, user=request.user, password=form.cleaned_data["password"]
        )
        if step.user is not None:
            return redirect(requested_next(request) or reverse("account:overview"))
        form.add_error("password", step.error(services.WRONG_PASSWORD))
        status = 429 if step.throttle else 200
    context = {"form": form, "next": requested_next(request)}
    return render(request, "accounts/signin/reauthenticate.html", context, status=status)
