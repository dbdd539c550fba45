"""The registration page and the "check your mail" page after it."""

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from relatch.accounts import ratelimit
from relatch.accounts.emails.middleware import has_verified_email
from relatch.accounts.models import User
from relatch.accounts.registration import policy
from relatch.accounts.registration.forms import HONEYPOT_FIELD, USERNAME_TAKEN, RegistrationForm
from relatch.accounts.registration.services import (
    UsernameTakenError,
    register_account,
    sign_in_new_account,
)
from relatch.web.client import client_ip

# Per client IP: enough for a family or an office behind one address, too few for a bot farm.
REGISTRATION_LIMIT = "10/hour"
FORM_TEMPLATE = "accounts/registration/register.html"
CLOSED_TEMPLATE = "accounts/registration/closed.html"


@login_not_required
def register(request: HttpRequest) -> HttpResponse:
    """Registration form. Every accepted submission ends on the same "check your mail" page."""
    if request.user.is_authenticated:
        return redirect("account:overview")
    if not policy.signup_open():
        # RELATCH_SIGNUP=closed: no form, and a POST sent straight here makes nothing.
        status = 403 if request.method == "POST" else 200
        context = {"message": policy.CLOSED_MESSAGE}
        return render(request, CLOSED_TEMPLATE, context, status=status)
    if request.method != "POST":
        return _form_page(request, RegistrationForm())
    if request.POST.get(HONEYPOT_FIELD):
        # A bot: it sees what a person would, and nothing is created or sent.
        return redirect("registration:check_mail")
    form = RegistrationForm(request.POST)
    if not form.is_valid():
        return _form_page(request, form, status=400)
    return _submit(request, form)


def _form_page(request: HttpRequest, form: RegistrationForm, status: int = 200) -> HttpResponse:
    domains = sorted(settings.SIGNUP_DOMAINS) if policy.mode() == policy.DOMAINS else []
    return render(request, FORM_TEMPLATE, {"form": form, "signup_domains": domains},
                  status=status)


def _submit(request: HttpRequest, form: RegistrationForm) -> HttpResponse:
    key = client_ip(request) or "unknown"
    if not ratelimit.hit(scope="register", key=key, limit=REGISTRATION_LIMIT):
        form.add_error(
            None,
            "Too many accounts were registered from your network in the last "
            "hour. Nothing was created; try again in an hour.",
        )
        return _form_page(request, form, status=429)
    data = form.cleaned_data
    try:
        user = register_account(
            request=request,
            username=data["username"],
            name=data["name"],
            email=data["email"],
            password=data["password"],
        )
    except UsernameTakenError:
        form.add_error("username", USERNAME_TAKEN)
        return _form_page(request, form, status=400)
    except policy.SignupRefusedError as refusal:  # the mode changed since the form was checked
        form.add_error("email", refusal.message)
        return _form_page(request, form, status=403)
    response = redirect("registration:check_mail")
    sign_in_new_account(request=request, response=response, user=user)
    return response


@login_not_required
@require_GET
def check_mail(request: HttpRequest) -> HttpResponse:
    """The same page for every sign-up, whether or not the address already had an account:
    it names the address the signed-in registrant gave (the account's only one)."""
    address = None
    if isinstance(request.user, User) and not has_verified_email(request.user):
        address = request.user.emails.filter(primary=True).values_list("address", flat=True).first()
    return render(request, "accounts/registration/check_mail.html", {"address": address})
