"""The address page and its actions, and the verification link's page.

Every action is a POST from the address page; a GET to an action's URL (e.g. after
re-authenticating) just goes back to the page.
"""

from collections.abc import Callable
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from relatch.accounts.current import signed_in_user
from relatch.accounts.emails import services
from relatch.accounts.emails.forms import AddressForm
from relatch.accounts.emails.middleware import verified_email_not_required
from relatch.accounts.reauth import require_recent_auth
from relatch.web.referrer import keep_url_out_of_referrers

MANAGE_TEMPLATE = "accounts/emails/manage.html"


def _manage_page(
    request: HttpRequest,
    *,
    add_form: AddressForm | None = None,
    replace_form: AddressForm | None = None,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    emails = list(signed_in_user(request).emails.all())
    verified_count = sum(1 for e in emails if e.verified)
    # Relatch unverified every address (a domain check): ask for a new one, not for a typo.
    lost_trust = verified_count == 0 and any(e.unverified_at for e in emails)
    context = {
        "emails": emails,
        "verified_count": verified_count,
        "trust_taken_back": lost_trust,
        "can_add": (verified_count > 0 or lost_trust)
        and len(emails) < services.MAX_EMAILS_PER_ACCOUNT,
        "max_emails": services.MAX_EMAILS_PER_ACCOUNT,
        "add_form": add_form or AddressForm(auto_id="id_add_%s"),
        "replace_form": replace_form or AddressForm(auto_id="id_replace_%s"),
        "error": error,
    }
    return render(request, MANAGE_TEMPLATE, context, status=status)


def _post_from_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """GET never changes state: an action's URL opened by GET shows the page instead."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if request.method != "POST":
            return redirect("emails:manage")
        return view(request, *args, **kwargs)

    return wrapper


@verified_email_not_required
@require_GET
def manage(request: HttpRequest) -> HttpResponse:
    """The account's addresses, primary and verified state, and what can be done with each."""
    return _manage_page(request)


# Not verified_email_not_required: an account without a verified address can only verify or
# replace, so the middleware sends it back to the page.
@_post_from_page
@require_recent_auth
def add(request: HttpRequest) -> HttpResponse:
    form = AddressForm(request.POST, auto_id="id_add_%s")
    if not form.is_valid():
        return _manage_page(request, add_form=form, status=400)
    try:
        email = services.add_email(
            request=request, user=signed_in_user(request), address=form.cleaned_data["address"]
        )
    except services.EmailChangeError as refusal:
        return _manage_page(request, add_form=form, error=refusal.message, status=refusal.status)
    messages.success(request, f"Added {email.address}. We sent it a link to verify it.")
    return redirect("emails:manage")


@verified_email_not_required
@_post_from_page
def resend(request: HttpRequest, email_id: int) -> HttpResponse:
    try:
        email = services.resend_verification(
            request=request, user=signed_in_user(request), email_id=email_id
        )
    except services.EmailChangeError as refusal:
        return _manage_page(request, error=refusal.message, status=refusal.status)
    messages.success(request, f"We sent a new verification link to {email.address}.")
    return redirect("emails:manage")


@_post_from_page
@require_recent_auth
def primary(request: HttpRequest, email_id: int) -> HttpResponse:
    try:
        user = signed_in_user(request)
        email = services.make_primary(request=request, user=user, email_id=email_id)
    except services.EmailChangeError as refusal:
        return _manage_page(request, error=refusal.message, status=refusal.status)
    messages.success(request, f"{email.address} is now your primary address.")
    return redirect("emails:manage")


@_post_from_page
@require_recent_auth
def remove(request: HttpRequest, email_id: int) -> HttpResponse:
    try:
        user = signed_in_user(request)
        address = services.remove_email(request=request, user=user, email_id=email_id)
    except services.EmailChangeError as refusal:
        return _manage_page(request, error=refusal.message, status=refusal.status)
    messages.success(request, f"Removed {address}.")
    return redirect("emails:manage")


@verified_email_not_required
@_post_from_page
@require_recent_auth
def replace(request: HttpRequest, email_id: int) -> HttpResponse:
    form = AddressForm(request.POST, auto_id="id_replace_%s")
    if not form.is_valid():
        return _manage_page(request, replace_form=form, status=400)
    try:
        email = services.replace_unverified_email(
            request=request,
            user=signed_in_user(request),
            email_id=email_id,
            new_address=form.cleaned_data["address"],
        )
    except services.EmailChangeError as refusal:
        return _manage_page(
            request, replace_form=form, error=refusal.message, status=refusal.status
        )
    messages.success(request, f"Your address is now {email.address}. We sent it a link.")
    return redirect("emails:manage")




@login_not_required
@verified_email_not_required
@never_cache
def verify(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a confirm button (mail scanners follow links; they must not use them up);
    POST verifies. Signed in or not: the link is the proof."""
    try:
        if request.method == "POST":
            email = services.verify_email(request=request, token=token)
        else:
            email = services.preview_verification(token=token)
    except services.VerificationError as refusal:
        page = render(
            request,
            "accounts/emails/verify_refused.html",
            {"reason": refusal.message, "code": refusal.code},
            status=refusal.status,
        )
        return keep_url_out_of_referrers(page)
    if request.method != "POST":
        return keep_url_out_of_referrers(
            render(request, "accounts/emails/verify_confirm.html", {"address": email.address})
        )
    if request.user.is_authenticated and request.user.pk == email.user_id:
        messages.success(request, f"{email.address} is verified.")
        return redirect("emails:manage")
    return redirect("emails:verified")


@login_not_required
@require_GET
def verified(request: HttpRequest) -> HttpResponse:
    """Where a verification lands when the browser is not signed in to that account."""
    return render(request, "accounts/emails/verified.html")
