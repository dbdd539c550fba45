"""The outbox pages: exist only when no SMTP server is configured (the embedded default)."""

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from relatch.notify.outbox import list_messages, read_message


def _require_outbox() -> None:
    if not settings.OUTBOX_ENABLED:
        raise Http404("No outbox: mail goes to the SMTP server")


@login_not_required
@require_GET
def outbox(request: HttpRequest) -> HttpResponse:
    """The outbox: every message Relatch would have mailed, newest first."""
    _require_outbox()
    return render(request, "notify/outbox.html", {"messages_list": list_messages()})


@login_not_required
@require_GET
@never_cache  # the message may carry a live reset or verification link
def outbox_message(request: HttpRequest, name: str) -> HttpResponse:
    """One message: its headers and its text, links made clickable."""
    _require_outbox()
    message = read_message(name)
    if message is None:
        raise Http404("No such message")
    return render(request, "notify/outbox_message.html", {"message": message})


@login_not_required
@require_GET
@never_cache
def outbox_message_html(request: HttpRequest, name: str) -> HttpResponse:
    """The HTML part on its own, sandboxed: a mail's markup must not run as this site."""
    _require_outbox()
    message = read_message(name)
    if message is None or not message.html:
        raise Http404("No such message")
    response = HttpResponse(message.html, content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = "sandbox; default-src 'none'; style-src 'unsafe-inline'"
    return response
