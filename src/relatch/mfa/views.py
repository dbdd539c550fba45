"""The account's two-step sign-in page: what is set up, what is not, and why each matters."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from relatch.accounts.current import signed_in_user
from relatch.mfa.queries import CODES_RUNNING_LOW_AT, factor_summary
from relatch.web.next_url import requested_next


@require_GET
def overview(request: HttpRequest) -> HttpResponse:
    """Authenticator app, security keys and recovery codes at a glance, each linked to the page
    that changes it. Read-only: nothing here needs a fresh password (the pages that change
    factors ask for it). ``?next=``: the task a two-step wall stopped, which the set-up pages
    return to once a factor is added."""
    context = {
        "factors": factor_summary(user=signed_in_user(request)),
        "low_at": CODES_RUNNING_LOW_AT,
        "next": requested_next(request),
    }
    return render(request, "mfa/overview/overview.html", context)
