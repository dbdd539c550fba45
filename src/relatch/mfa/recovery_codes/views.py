"""The recovery-codes pages: status, make a new set, the one display, download, confirm.

Flow: the status page POSTs to ``generate`` (re-authentication required), which redirects to
``show``: the codes appear once, with copy, download and print. The user then enters one back
on ``confirm`` (it is not spent). Every refusal changes nothing and says why.
"""

from collections.abc import Callable
from functools import wraps

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from relatch.accounts.current import signed_in_user
from relatch.accounts.reauth import require_recent_auth_then
from relatch.mfa.models import RecoveryCodeSet
from relatch.mfa.recovery_codes import display, services
from relatch.mfa.recovery_codes.forms import RecoveryCodeForm
from relatch.mfa.recovery_codes.primitive import CODES_PER_SET
from relatch.web.once import issue_form_token, use_form_token

_FORM_TOKEN_KEY = "relatch_recovery_codes_form"  # noqa: S105 (a session key name)
_TEMPLATES = "mfa/recovery_codes"
NEXT_KEY = services.NEXT_SESSION_KEY
ALREADY_SENT = (
    "This form was already sent, or the page was out of date. Nothing was changed: "
    "your codes are the ones made by the first click."
)


def _form_token(request: HttpRequest) -> str:
    return issue_form_token(request, key=_FORM_TOKEN_KEY)


def _use_form_token(request: HttpRequest) -> bool:
    return use_form_token(request, key=_FORM_TOKEN_KEY)


def _page_context(request: HttpRequest) -> dict[str, object]:
    user = signed_in_user(request)
    pending = display.pending_codes(request, user_id=user.pk)
    return {
        "code_status": services.code_set_status(user),
        "codes_per_set": CODES_PER_SET,
        "form_token": _form_token(request),
        "codes_waiting": pending is not None and not pending.shown,
    }


def _manage_page(request: HttpRequest, *, error: str = "", status: int = 200) -> HttpResponse:
    user = signed_in_user(request)
    gate = NEXT_KEY in request.session and not services.has_confirmed_codes(user)
    context = {**_page_context(request), "error": error, "gate": gate}
    return render(request, f"{_TEMPLATES}/manage.html", context, status=status)


def _post_only(view: Callable[[HttpRequest], HttpResponse]) -> Callable[..., HttpResponse]:
    """GET never changes state: the action's URL opened by GET shows the status page."""

    @wraps(view)
    def wrapper(request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            return redirect("recovery_codes:manage")
        return view(request)

    return wrapper


@never_cache
@require_GET
def manage(request: HttpRequest) -> HttpResponse:
    """How many codes are left, when they were made, whether they were confirmed as saved."""
    return _manage_page(request)


@never_cache
@_post_only
@require_recent_auth_then("recovery_codes:manage")
def generate(request: HttpRequest) -> HttpResponse:
    """Make a new set (replacing the old), then show it once on ``show``."""
    if not _use_form_token(request):
        return _manage_page(request, error=ALREADY_SENT, status=400)
    user = signed_in_user(request)
    try:
        codes = services.generate_recovery_codes(request=request, user=user)
    except services.RecoveryCodeError as refusal:
        return _manage_page(request, error=refusal.message, status=refusal.status)
    response = redirect("recovery_codes:show")
    set_id = RecoveryCodeSet.objects.only("pk").get(user=user).pk
    display.keep_for_display(request, response, codes=codes, set_id=set_id)
    return response


@never_cache
@require_GET
def show(request: HttpRequest) -> HttpResponse:
    """The new codes, once. A second load shows that they are gone (NIST N22: delivered once)."""
    user = signed_in_user(request)
    pending = display.pending_codes(request, user_id=user.pk)
    if pending is None or pending.shown:
        return _gone(request)
    display.mark_shown(request)
    context = {"codes": pending.codes, "download_name": _download_name(request)}
    return render(request, f"{_TEMPLATES}/show.html", context)


@never_cache
@require_GET
def download(request: HttpRequest) -> HttpResponse:
    """The new codes as a text file, while their page is open (never after a reload)."""
    user = signed_in_user(request)
    pending = display.pending_codes(request, user_id=user.pk)
    if pending is None:
        return _gone(request)
    status = services.code_set_status(user)
    made_at = status.created_at if status else timezone.now()
    context = {"codes": pending.codes, "username": user.username, "made_at": made_at}
    response = HttpResponse(
        render_to_string(f"{_TEMPLATES}/codes.txt", context, request=request),
        content_type="text/plain; charset=utf-8",
    )
    response["Content-Disposition"] = content_disposition_header(True, _download_name(request))
    return response


def _download_name(request: HttpRequest) -> str:
    return f"relatch-recovery-codes-{signed_in_user(request).username}.txt"


def _gone(request: HttpRequest) -> HttpResponse:
    response = render(request, f"{_TEMPLATES}/gone.html", _page_context(request), status=410)
    display.forget(request, response)
    return response


@never_cache
@require_http_methods(["GET", "POST"])
def confirm(request: HttpRequest) -> HttpResponse:
    """Enter one code back to prove the set was saved; the code stays unused."""
    form = RecoveryCodeForm(request.POST if request.method == "POST" else None)
    if request.method != "POST":
        return _confirm_page(request, form)
    if not form.is_valid():
        return _confirm_page(request, form, status=400)
    try:
        services.confirm_saved_codes(
            request=request, user=signed_in_user(request), code=form.cleaned_data["code"]
        )
    except services.RecoveryCodeError as refusal:
        form.add_error(None, refusal.message)
        return _confirm_page(request, form, status=refusal.status)
    messages.success(request, "Thank you: your recovery codes are saved. Keep them safe.")
    response = redirect(request.session.pop(NEXT_KEY, None) or "recovery_codes:manage")
    display.forget(request, response)
    return response


def _confirm_page(
    request: HttpRequest, form: RecoveryCodeForm, *, status: int = 200
) -> HttpResponse:
    context = {**_page_context(request), "form": form}
    return render(request, f"{_TEMPLATES}/confirm.html", context, status=status)


@never_cache
@require_GET
def replace_after_use(request: HttpRequest) -> HttpResponse:
    """Where a sign-in with a recovery code lands: make a new set now (NIST N2)."""
    return render(request, f"{_TEMPLATES}/replace_after_use.html", _page_context(request))
