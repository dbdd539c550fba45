"""The sessions page: list the account's signed-in browsers and end them (ASVS 7.5.2)."""


from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from relatch.accounts.current import signed_in_user
from relatch.accounts.reauth import require_recent_auth, require_recent_auth_then
from relatch.accounts.sessions.queries import is_current_session, other_session_count, session_rows
from relatch.accounts.sessions.services import current_digest, end_other_sessions, end_session


@require_GET
@require_recent_auth
def session_list(request: HttpRequest) -> HttpResponse:
    """Every signed-in browser of the account, most recently active first."""
    rows = session_rows(user=signed_in_user(request), current_digest=current_digest(request))
    return render(
        request,
        "accounts/sessions/list.html",
        {"sessions": rows, "others": sum(1 for row in rows if not row.is_current)},
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
