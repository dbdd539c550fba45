"""The mail queue for staff: what waits, what was given up, and every attempt of a message."""

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from relatch.notify import queries
from relatch.notify.retries import security_mail_give_up
from relatch.notify.staff.access import staff_only


@staff_only
@require_GET
@never_cache  # addresses and errors: not for a shared cache
def mail_queue(request: HttpRequest) -> HttpResponse:
    """The backlog's numbers, the mail still being retried and the mail given up."""
    return render(request, "notify/staff/mail.html", {
        "backlog": queries.mail_backlog(),
        "undelivered": queries.undelivered_mail(),
        "given_up": queries.given_up_mail(),
        "rows_shown": queries.STAFF_PAGE_ROWS,
        "give_up_hours": int(security_mail_give_up().total_seconds() // 3600),
    })


@staff_only
@require_GET
@never_cache
def mail_message(request: HttpRequest, outgoing_id: int) -> HttpResponse:
    """One message and every attempt kept for it."""
    detail = queries.mail_detail(outgoing_id=outgoing_id)
    if detail is None:
        raise Http404("No such message.")
    return render(request, "notify/staff/mail_message.html", {"detail": detail})
