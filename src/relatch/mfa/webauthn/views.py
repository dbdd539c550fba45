"""The security-key pages: the list, adding a key, renaming and removing one.

Adding, renaming and removing need a recent re-authentication (NIST N13, ASVS 7.5.1). The
browser's part of adding a key is static/relatch/webauthn.js (no inline script: strict CSP).
"""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from relatch.accounts.current import signed_in_user
from relatch.accounts.models import User
from relatch.accounts.reauth import require_recent_auth, require_recent_auth_then
from relatch.mfa.policy import has_second_factor
from relatch.mfa.webauthn import services
from relatch.mfa.webauthn.forms import AddKeyForm, RenameKeyForm
from relatch.mfa.webauthn.queries import keys_of
from relatch.mfa.webauthn.relying_party import rp_id_is_ip_address, rp_origin
from relatch.mfa.webauthn.services import WebAuthnError
from relatch.web.next_url import requested_next, with_next

LIST_TEMPLATE = "mfa/webauthn/list.html"
ADD_TEMPLATE = "mfa/webauthn/add.html"
_LABEL_REASONS = {"label", "duplicate"}


def _list_page(request: HttpRequest, *, error: str = "", status: int = 200) -> HttpResponse:
    user = signed_in_user(request)
    context = {
        "keys": keys_of(user),
        "error": error,
        "max_keys": services.MAX_KEYS_PER_ACCOUNT,
        "max_label": services.MAX_LABEL_LENGTH,
    }
    return render(request, LIST_TEMPLATE, context, status=status)


def _status(refusal: WebAuthnError) -> int:
    return {"not_found": 404, "frozen": 403}.get(refusal.reason, 400)


@require_GET
def key_list(request: HttpRequest) -> HttpResponse:
    """The account's security keys: name, when added, when last used."""
    return _list_page(request)


def _add_page(request: HttpRequest, form: AddKeyForm, *, status: int = 200) -> HttpResponse:
    # Every showing of the page carries a fresh challenge; the old one is no longer valid.
    options = services.registration_options(request=request, user=signed_in_user(request))
    context = {
        "form": form,
        "options": options,
        "rp_is_ip": rp_id_is_ip_address(),
        "origin": rp_origin(),
        "next": requested_next(request),
    }
    return render(request, ADD_TEMPLATE, context, status=status)


def _saved_codes_gate(request: HttpRequest, user: User) -> HttpResponse | None:
    """Before a first second factor, the user must have saved recovery codes (issue 3 §3)."""
    if has_second_factor(user):
        return None
    # Imported at call time, as agreed between the factor packages: neither needs the other
    # to load.
    from relatch.mfa.recovery_codes.services import saved_codes_required

    # The codes page comes back here with the task (``next``) that asked for a factor.
    return saved_codes_required(
        request, with_next(reverse("webauthn:add"), requested_next(request))
    )


@never_cache
@require_http_methods(["GET", "POST"])
@require_recent_auth
def add(request: HttpRequest) -> HttpResponse:
    """GET: name the key and touch it; POST: check the browser's answer and add the key."""
    user = signed_in_user(request)
    if (gate := _saved_codes_gate(request, user)) is not None:
        return gate
    if request.method != "POST":
        return _add_page(request, AddKeyForm())
    form = AddKeyForm(request.POST)
    if not form.is_valid():
        return _add_page(request, form, status=400)
    try:
        key = services.register_key(
            request=request,
            user=user,
            label=form.cleaned_data["label"],
            credential_json=form.cleaned_data["credential"],
        )
    except WebAuthnError as refusal:
        form.add_error("label" if refusal.reason in _LABEL_REASONS else None, refusal.message)
        return _add_page(request, form, status=_status(refusal))
    passkey = " It can also sign you in without a password." if key.discoverable else ""
    messages.success(request, f"Added the security key “{key.label}”.{passkey}")
    # Back to the task a two-step wall stopped (a local path only: no open redirect).
    return redirect(requested_next(request) or "webauthn:list")


@require_POST
@require_recent_auth_then("webauthn:list")
def rename(request: HttpRequest, key_id: int) -> HttpResponse:
    form = RenameKeyForm(request.POST)
    if not form.is_valid():
        return _list_page(request, error=str(form.errors["label"][0]), status=400)
    try:
        key = services.rename_key(
            request=request,
            user=signed_in_user(request),
            key_id=key_id,
            label=form.cleaned_data["label"],
        )
    except WebAuthnError as refusal:
        return _list_page(request, error=refusal.message, status=_status(refusal))
    messages.success(request, f"The security key is now named “{key.label}”.")
    return redirect("webauthn:list")


@require_POST
@require_recent_auth_then("webauthn:list")
def remove(request: HttpRequest, key_id: int) -> HttpResponse:
    try:
        label = services.remove_key(request=request, user=signed_in_user(request), key_id=key_id)
    except WebAuthnError as refusal:
        return _list_page(request, error=refusal.message, status=_status(refusal))
    messages.success(request, f"Removed the security key “{label}”.")
    return redirect("webauthn:list")
