"""The account page with its security check-up, the name form, and the security history."""

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from relatch.accounts.current import signed_in_user
from relatch.accounts.overview.checkup import security_checkup
from relatch.accounts.overview.forms import NameForm
from relatch.accounts.overview.queries import addresses, event_rows, recent_event_rows
from relatch.accounts.overview.services import change_name
from relatch.accounts.second_address.queries import second_address_prompt
from relatch.accounts.second_address.services import dismiss_prompt
from relatch.accounts.sessions.queries import session_count
from relatch.audit.queries import security_history_page


def _render_overview(request: HttpRequest, form: NameForm, status: int = 200) -> HttpResponse:
    user = signed_in_user(request)
    items = security_checkup(user=user)
    context: dict[str, Any] = {
        "name_form": form,
        "addresses": addresses(user=user),
        "has_password": user.has_usable_password(),
        "session_count": session_count(user=user),
        "recent_events": recent_event_rows(user=user),
        "second_address_prompt": second_address_prompt(user=user),
        "to_do": [item for item in items if not item.ok],
        "protections": [item for item in items if item.ok],
    }
    return render(request, "accounts/overview/overview.html", context, status=status)


@require_GET
def overview(request: HttpRequest) -> HttpResponse:
    """The account at a glance, and what to do next to keep it safe."""
    return _render_overview(request, NameForm(initial={"name": signed_in_user(request).name}))


@require_POST
def edit_name(request: HttpRequest) -> HttpResponse:
    """Change the display name; an invalid one is refused with the reason, nothing changes."""
    form = NameForm(request.POST)
    if not form.is_valid():
        return _render_overview(request, form, status=400)
    if change_name(request=request, user=signed_in_user(request), name=form.cleaned_data["name"]):
        messages.success(request, "Your name was updated.")
    else:
        messages.info(request, "Your name is unchanged.")
    return redirect("account:overview")


@require_POST
def dismiss_second_address(request: HttpRequest) -> HttpResponse:
    """"Not now" on the second-address banner: hidden, and no reminder mail, for a year."""
    dismiss_prompt(user=signed_in_user(request))
    messages.info(request, "We won't ask you to add a second address for a year. You can "
                           "add one at any time from the email addresses page.")
    return redirect("account:overview")


@require_GET
def history(request: HttpRequest) -> HttpResponse:
    """The account's security events, newest first, 25 a page, paged by ``?before=`` and
    ``?after=`` cursors; a bad cursor, or an old ``?page=`` link, shows the newest page."""
    page = security_history_page(
        user=signed_in_user(request),
        before=request.GET.get("before"),
        after=request.GET.get("after"),
    )
    return render(
        request,
        "accounts/overview/history.html",
        {"page": page, "events": event_rows(page.events)},
    )
