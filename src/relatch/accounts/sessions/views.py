"""The sessions page: list the account's signed-in browsers and end them (ASVS 7.5.2), and its
trusted devices, which can be forgotten (issue 3 §5)."""


from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from relatch.accounts.current import signed_in_user
from relatch.accounts.devices import current_device_digest
from relatch.accounts.reauth import require_recent_auth, require_recent_auth_then
from relatch.accounts.sessions.devices import forget_device, forget_other_devices
from relatch.accounts.sessions.queries import (
    is_current_session,
    other_device_count,
    other_session_count,
    session_rows,
    trusted_device_rows,
)
from relatch.accounts.sessions.services import current_digest, end_other_sessions, end_session


@require_GET
@require_recent_auth
def session_list(request: HttpRequest) -> HttpResponse:
    """Every signed-in browser of the account, most recently active first."""
    user = signed_in_user(request)
    rows = session_rows(user=user, current_digest=current_digest(request))
    devices = trusted_device_rows(user=user, current_digest=current_device_digest(request))
    return render(
        request,
        "accounts/sessions/list.html",
        {
            "sessions": rows,
            "others": sum(1 for row in rows if not row.is_current),
            "devices": devices,
            "other_devices": sum(1 for device in devices if not device.is_current),
        },
    )


@require_POST
@require_recent_auth_then("sessions:list")
def end(request: HttpRequest, session_id: int) -> HttpResponse:
    """End one other session; that browser is signed out on its next request."""
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
    """End every session but this one."""
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
def forget(request: HttpRequest, device_id: int) -> HttpResponse:
    """Forget one trusted device: its next sign-in is treated as a new device's."""
    # Another account's device id, or one already forgotten: the same answer, nothing changes.
    if not forget_device(request=request, user=signed_in_user(request), device_id=device_id):
        return render(request, "accounts/sessions/device_not_found.html", status=404)
    messages.success(
        request,
        "Device forgotten. Its next sign-in will be checked like a new device's. "
        "It stays signed in until you end its session.",
    )
    return redirect("sessions:list")


@require_POST
@require_recent_auth_then("sessions:list")
def forget_others(request: HttpRequest) -> HttpResponse:
    """Forget every trusted device but this browser."""
    user = signed_in_user(request)
    if not other_device_count(user=user, current_digest=current_device_digest(request)):
        messages.info(request, "There are no other devices to forget.")
        return redirect("sessions:list")
    count = forget_other_devices(request=request, user=user)
    noun = "device" if count == 1 else "devices"
    messages.success(
        request, f"Forgot {count} other {noun}. Each will be checked like a new device next time."
    )
    return redirect("sessions:list")
