"""The authenticator app page: set one up (QR code and secret, then a code), replace it with
a new phone's, or remove it. Every change needs a recent password (ASVS 7.5.1, MFA6)."""

from datetime import timedelta

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from relatch.accounts.current import signed_in_user
from relatch.accounts.models import User
from relatch.accounts.reauth import require_recent_auth, require_recent_auth_then
from relatch.mfa.models import TotpDevice
from relatch.mfa.policy import has_second_factor, refusal_to_remove_factor
from relatch.mfa.totp import primitive, services
from relatch.mfa.totp.forms import TotpCodeForm
from relatch.web.next_url import requested_next, with_next

ENROL_TEMPLATE = "mfa/totp/enrol.html"
MANAGE_TEMPLATE = "mfa/totp/manage.html"
REFUSED_TEMPLATE = "mfa/totp/refused.html"
DOUBLE_SUBMIT_SECONDS = 60
EXPIRED = (
    "This setup expired: a secret waits 10 minutes for its first code. Scan the new QR code "
    "below (remove the old Relatch entry from your app if you added it) and enter the code."
)


def _codes_first(request: HttpRequest, user: User) -> HttpResponse | None:
    """Before a FIRST second factor, the user must have saved recovery codes (issue 3 §3):
    a lost phone must not become a locked account. The codes page comes back here, still
    carrying the task (``next``) that sent the user to set up a factor."""
    if has_second_factor(user):
        return None
    # Imported here: the recovery-codes package is its own area and imports the policy.
    from relatch.mfa.recovery_codes.services import saved_codes_required

    return saved_codes_required(request, with_next(reverse("totp:setup"), requested_next(request)))


def _just_enrolled(user: User) -> bool:
    since = timezone.now() - timedelta(seconds=DOUBLE_SUBMIT_SECONDS)
    return TotpDevice.objects.filter(user=user, created_at__gte=since).exists()


def _enrol_page(
    request: HttpRequest, *, form: TotpCodeForm | None = None, error: str = "", status: int = 200
) -> HttpResponse:
    user = signed_in_user(request)
    try:
        pending = services.start_enrolment(request, user)
    except services.TotpError as refusal:  # a frozen account: no secret to show
        return render(request, REFUSED_TEMPLATE, {"error": refusal.message}, status=403)
    uri = primitive.provisioning_uri(secret=pending.secret, account_name=user.username)
    context = {
        "form": form or TotpCodeForm(),
        "error": error,
        "qr_data_uri": primitive.qr_data_uri(uri),
        "otpauth_uri": uri,
        "secret_groups": primitive.grouped(pending.secret),
        "issuer": primitive.ISSUER,
        "account_name": user.username,
        "minutes_left": max(1, pending.expires_in // 60),
        "replacing": TotpDevice.objects.filter(user=user).exists(),
        "next": requested_next(request),
    }
    return render(request, ENROL_TEMPLATE, context, status=status)


def _manage_page(
    request: HttpRequest, device: TotpDevice, *, error: str = "", status: int = 200
) -> HttpResponse:
    user = signed_in_user(request)
    context = {
        "device": device,
        "error": error,
        "removal_refusal": refusal_to_remove_factor(
            user=user, remaining_after=user.webauthn_credentials.count()
        ),
    }
    return render(request, MANAGE_TEMPLATE, context, status=status)


@require_GET
@never_cache  # the page shows a secret: no cache may keep it
@require_recent_auth
def setup(request: HttpRequest) -> HttpResponse:
    """The app's state and actions, or (none yet, or ``?replace=1``) the enrolment page."""
    user = signed_in_user(request)
    device = TotpDevice.objects.filter(user=user).first()
    if device is not None and request.GET.get("replace") != "1":
        return _manage_page(request, device)
    if (detour := _codes_first(request, user)) is not None:
        return detour
    return _enrol_page(request)


@require_POST
@never_cache
@require_recent_auth_then("totp:setup")
def confirm(request: HttpRequest) -> HttpResponse:
    """Bind the shown secret once a code from the app proves it was saved there."""
    user = signed_in_user(request)
    if (detour := _codes_first(request, user)) is not None:
        return detour
    if services.pending_enrolment(request, user) is None:
        if _just_enrolled(user):
            # The same form sent twice: the first one did the work, nothing to refuse.
            messages.info(request, "Your authenticator app is set up.")
            return redirect("totp:setup")
        return _enrol_page(request, error=EXPIRED, status=400)
    form = TotpCodeForm(request.POST)
    if not form.is_valid():
        return _enrol_page(request, form=form, status=400)
    try:
        services.confirm_enrolment(request=request, user=user, code=form.cleaned_data["code"])
    except services.TotpError as refusal:
        form.add_error("code", refusal.message)  # at the field, which gets the focus
        return _enrol_page(request, form=form, status=400)
    messages.success(
        request, "Authenticator app added. From now on, signing in asks for a code from it."
    )
    # Back to the task a two-step wall stopped (a local path only: no open redirect).
    return redirect(requested_next(request) or "totp:setup")


@require_POST
@require_recent_auth_then("totp:setup")
def remove(request: HttpRequest) -> HttpResponse:
    """Remove the app (the way to move to a new phone, then set it up again)."""
    user = signed_in_user(request)
    try:
        services.remove_totp(request=request, user=user)
    except services.TotpError as refusal:
        device = TotpDevice.objects.filter(user=user).first()
        if device is None:
            messages.info(request, refusal.message)
            return redirect("totp:setup")
        return _manage_page(request, device, error=refusal.message, status=409)
    messages.success(
        request,
        "Authenticator app removed: its codes no longer work. To use a new phone, set it up again.",
    )
    return redirect("mfa:overview")
