"""``POST /hooks/bounces``: bounces handed over by a relay instead of over SMTP.

The body is the DSN itself: the whole message (``Content-Type: message/rfc822``, or any other
type) or only its delivery-status part (``message/delivery-status``). The relay signs the
body: ``X-Relatch-Signature: sha256=<hex HMAC-SHA256 of the body with
RELATCH_BOUNCE_WEBHOOK_SECRET>``. It may name the address the bounce was sent to (the return
path) in ``X-Relatch-Envelope-To`` when the body does not carry it. Without the secret the
endpoint does not exist (404).

Answers: 200 with what became of the report (also when it was ignored: sending it again would
change nothing), 403 for a missing or wrong signature, 413 for a body over
``BOUNCE_MAX_BYTES``, 503 when the database is down (try again later).
"""

import hashlib
import hmac

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from relatch.accounts.emails.bounces import receive_dsn
from relatch.accounts.emails.middleware import verified_email_not_required

SIGNATURE_HEADER = "X-Relatch-Signature"
ENVELOPE_HEADER = "X-Relatch-Envelope-To"


def signature(secret: str, body: bytes) -> str:
    """The signature header's value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _text(status: int, text: str) -> HttpResponse:
    return HttpResponse(text + "\n", status=status, content_type="text/plain; charset=utf-8")


@csrf_exempt  # machine to machine, no cookies: the body's own signature authenticates it
@login_not_required
@verified_email_not_required
@require_POST
def bounce_hook(request: HttpRequest) -> HttpResponse:
    secret = settings.BOUNCE_WEBHOOK_SECRET
    if not secret:
        raise Http404("no bounce webhook")
    limit = settings.BOUNCE_MAX_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _text(400, "Bad Content-Length.")
    if declared > limit:
        return _text(413, f"A bounce report has at most {limit} bytes.")
    body = request.read(limit + 1)
    if len(body) > limit:
        return _text(413, f"A bounce report has at most {limit} bytes.")
    given = request.headers.get(SIGNATURE_HEADER, "").strip()
    if not hmac.compare_digest(given.encode(), signature(secret, body).encode()):
        return _text(403, f"Missing or wrong {SIGNATURE_HEADER}.")
    if request.content_type == "message/delivery-status":
        body = b"Content-Type: message/delivery-status\r\n\r\n" + body
    recipients = [r.strip() for r in request.headers.get(ENVELOPE_HEADER, "").split(",")
                  if r.strip()]
    try:
        outcome = receive_dsn(raw=body, recipients=recipients)
    except DatabaseError:
        return _text(503, "Cannot take it now; try again later.")
    return JsonResponse({"outcome": outcome})
