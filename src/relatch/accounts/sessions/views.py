"""The devices page: every browser signed in to the account or trusted by it, once (ASVS
7.5.2, issue 3 §5, issue 19), each to be named, or ended: signed out and forgotten."""

from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from relatch.accounts.current import signed_in_user
from relatch.accounts.devices import current_device_digest
from relatch.accounts.models import DEVICE_NAME_MAX_LENGTH
from relatch.accounts.reauth import require_recent_auth, require_recent_auth_then
from relatch.accounts.sessions.devices import end_device, end_other_devices, rename_device
from relatch.accounts.sessions.entries import device_entries
from relatch.accounts.sessions.forms import DeviceNameForm
from relatch.accounts.sessions.queries import (
    is_current_session,
    other_device_count,
    other_session_count,
)
from relatch.accounts.sessions.services import current_digest, end_other_sessions, end_session


def _page(request: HttpRequest, *, error: str = "", status: int = 200) -> HttpResponse:
    entries = device_entries(
        user=signed_in_user(request),
        current_session=current_digest(request),
        current_device=current_device_digest(request),
    )
    return render(
        request,
        "accounts/sessions/list.html",
        {
            "devices": entries,
            "others": sum(1 for entry in entries if not entry.is_current),
            "max_name": DEVICE_NAME_MAX_LENGTH,
            "error": error,
        },
        status=status,
    )


@require_GET
@require_recent_auth
def session_list(request: HttpRequest) -> HttpResponse:
    """Every device of the account, this one first, then the most recently seen."""
    return _page(request)


@require_POST
@require_recent_auth_then("sessions:list")
def end(request: HttpRequest, session_id: int) -> HttpResponse:
    """End one other session (a browser that is not a trusted device): it is signed out on its
    next request."""
    user = signed_in_user(request)
    digest = current_digest(request)
    if is_current_session(user=user, session_id=session_id, current_digest=digest):
        messages.error(request, "That is the session you are using now. Sign out to end it.")
        return redirect("sessions:list")
    # Someone else's session id, or one that already ended: the same answer, nothing changes.
    if not end_session(request=request, user=user, session_id=session_id):
        return render(request, "accounts/sessions/not_found.html", status=404)
    messages.success(request, "Session ended. That browser is now signed out.")
    return redirect("sessions:list")


@require_POST
@require_recent_auth_then("sessions:list")
def end_others(request: HttpRequest) -> HttpResponse:
    """End every session but this one (the security-key and app pages' "sign out all other
    sessions"); trusted devices stay trusted."""
    user = signed_in_user(request)
    if not other_session_count(user=user, current_digest=current_digest(request)):
        messages.info(request, "There are no other sessions to end.")
        return redirect("sessions:list")
    count = end_other_sessions(request=request, user=user)
    noun = "session" if count == 1 else "sessions"
    messages.success(request, f"Ended {count} other {noun}. Only this browser is signed in now.")
    return redirect("sessions:list")


@require_POST
@require_recent_auth_then("sessions:list")
def end_one_device(request: HttpRequest, device_id: int) -> HttpResponse:
    """Sign one device out and forget it; this device's entry signs this browser out."""
    ended = end_device(request=request, user=signed_in_user(request), device_id=device_id)
    # Another account's device id, or one already ended: the same answer, nothing changes.
    if ended is None:
        return render(request, "accounts/sessions/device_not_found.html", status=404)
    if ended.here:
        logout(request)
        messages.success(request, "Signed out, and this device is forgotten.")
        return redirect("signin:login")
    signed_out = " and signed out" if ended.sessions else ""
    messages.success(
        request,
        f"Device ended: forgotten{signed_out}. Its next sign-in will be checked like a new "
        "device's.",
    )
    return redirect("sessions:list")


@require_POST
@require_recent_auth_then("sessions:list")
def end_all_other_devices(request: HttpRequest) -> HttpResponse:
    """Sign out and forget every device but this one."""
    user = signed_in_user(request)
    if not (
        other_session_count(user=user, current_digest=current_digest(request))
        or other_device_count(user=user, current_digest=current_device_digest(request))
    ):
        messages.info(request, "There are no other devices to end.")
        return redirect("sessions:list")
    ended = end_other_devices(request=request, user=user)
    messages.success(
        request,
        f"Ended the other devices: {_count(ended.sessions, 'session')} signed out, "
        f"{_count(ended.devices, 'device')} forgotten. Only this browser is signed in now.",
    )
    return redirect("sessions:list")


@require_POST
@require_recent_auth_then("sessions:list")
def rename(request: HttpRequest, device_id: int) -> HttpResponse:
    """Name one device, so the owner tells their laptop from their phone."""
    form = DeviceNameForm(request.POST)
    if not form.is_valid():
        return _page(request, error=str(form.errors["name"][0]), status=400)
    name = form.cleaned_data["name"]
    user = signed_in_user(request)
    if not rename_device(request=request, user=user, device_id=device_id, name=name):
        return render(request, "accounts/sessions/device_not_found.html", status=404)
    messages.success(
        request, f"The device is now named “{name}”." if name else "The device's name is reset."
    )
    return redirect("sessions:list")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
