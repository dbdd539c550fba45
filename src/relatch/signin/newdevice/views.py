"""The second-step page and its three factor forms, the check-your-mail page, the mailed link,
and the start of a self-service recovery ("I no longer have access to my email")."""

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
from relatch.mfa.models import NewDeviceConfirmation
from relatch.mfa.notices import factor_label
from relatch.mfa.selfservice import services as selfservice
from relatch.signin.factor.session import MAX_AGE
from relatch.signin.factor.views import restart, step_views
from relatch.signin.newdevice import confirmation as confirmations
from relatch.signin.newdevice.partial import PartialSignin, current_partial_signin
from relatch.signin.newdevice.services import (
    MAX_CONFIRMATIONS_PER_HOUR,
    SIGN_IN,
    live_link_of_this_signin,
    next_link_at,
)
from relatch.web.referrer import keep_url_out_of_referrers

_TEMPLATES = "signin/newdevice"

# The second step: anyone may reach it; only a partial sign-in of this browser gets a page.
_step = step_views(SIGN_IN, access=login_not_required)
second_step = _step.page
answer = _step.answer


@login_not_required
@never_cache
@require_GET
def check_mail(request: HttpRequest) -> HttpResponse:
    """The sign-in waits for the mailed link; or the user says the mailbox is gone."""
    partial = current_partial_signin(request)
    if partial is None or not partial.passed_factor:
        return restart(request, flow=SIGN_IN)
    held = NewDeviceConfirmation.objects.filter(pk=partial.confirmation_id or 0).first()
    context = {
        "username": partial.user.username,
        "address_count": len(verified_addresses(partial.user)),
        "factor_label": factor_label(partial.passed_factor),
        "is_code": partial.passed_factor == Factor.RECOVERY_CODE,
        # Where the confirmed link finishes (``confirm``): a recovery code goes to new codes.
        "goes_on_to_next": bool(partial.next_url) and partial.passed_factor != Factor.RECOVERY_CODE,
        "link_expires_at": held.expires_at if held else None,
        "can_recover": partial.passed_factor in selfservice.STARTING_FACTORS,
        "wait_hours": _wait_hours(),
        "partial_minutes": int(MAX_AGE.total_seconds() // 60),
        **_held_back(partial, held),
    }
    return render(request, f"{_TEMPLATES}/check_mail.html", context)


def _held_back(partial: PartialSignin, held: NewDeviceConfirmation | None) -> dict[str, object]:
    """No link was mailed (the hour's links are used up): when one can be, and whether one
    mailed earlier in this sign-in still works."""
    if held is not None:
        return {"held_back": False}
    earlier = live_link_of_this_signin(partial)
    return {
        "held_back": True,
        "links_per_hour": MAX_CONFIRMATIONS_PER_HOUR,
        "next_link_at": next_link_at(partial.user),
        "earlier_link_expires_at": earlier.expires_at if earlier else None,
    }


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


def _recovery_refused(request: HttpRequest, message: str, status: int) -> HttpResponse:
    context = {"reason": message}
    return render(request, f"{_TEMPLATES}/recovery_refused.html", context, status=status)


@login_not_required
@never_cache
@require_POST
def start_recovery(request: HttpRequest) -> HttpResponse:
    """ "I no longer have access to my email": start the wait (the code is not spent), for the
    account whose password and factor were just right in this browser."""
    partial = current_partial_signin(request)
    if partial is None:
        return _recovery_refused(
            request,
            "Your sign-in expired before the recovery could start. Sign in again with your "
            "password and a code, then choose “I no longer have access to my email”.",
            400,
        )
    response = redirect("selfrecovery:status")
    try:
        selfservice.start_self_recovery(
            request=request,
            response=response,
            user=partial.user,
            passed_factor=partial.passed_factor,
            confirmation_id=partial.confirmation_id,
        )
    except selfservice.SelfRecoveryError as refusal:
        return _recovery_refused(request, refusal.message, refusal.status)
    return response
