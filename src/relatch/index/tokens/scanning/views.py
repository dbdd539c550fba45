"""``POST /_/secrets/github/disclose-token``: GitHub's secret-scanning partner endpoint.

Answers: 200 with GitHub's feedback, ``[{"token_raw", "token_type", "label":
"true_positive" | "false_positive"}]``; 400 for missing or malformed signature headers or a
body that is not GitHub's format; 403 for a signature that does not verify (forged, changed
after signing, or an unknown key); 413 for a body over MAX_BODY; 503 when GitHub's keys cannot
be read (GitHub retries); 404 when RELATCH_SECRET_SCANNING_KEYS_URL is empty. Nothing changes
unless the signature verifies and the whole body parses.
"""

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from relatch.accounts.emails.middleware import verified_email_not_required
from relatch.index.tokens.scanning.alerts import (
    IDENTIFIER_HEADER,
    SIGNATURE_HEADER,
    AlertRefusedError,
    check_signature,
    parse_alert,
)
from relatch.index.tokens.scanning.keys import KeysUnavailableError
from relatch.index.tokens.scanning.services import report_leaked_token

MAX_BODY = 1024 * 1024


def _refused(status: int, message: str) -> JsonResponse:
    return JsonResponse({"detail": message}, status=status)


@csrf_exempt  # machine to machine, no cookies: GitHub's signature over the body authenticates
@login_not_required
@verified_email_not_required
@require_POST
def disclose_token(request: HttpRequest) -> JsonResponse:
    """Revoke the real Relatch tokens among those GitHub found published."""
    if not settings.SECRET_SCANNING_KEYS_URL:
        raise Http404("secret scanning is off")
    try:
        body = _body(request)
        check_signature(body=body, identifier=request.headers.get(IDENTIFIER_HEADER, ""),
                        signature=request.headers.get(SIGNATURE_HEADER, ""))
        reported = parse_alert(body)
    except AlertRefusedError as refusal:
        return _refused(refusal.status, refusal.message)
    except KeysUnavailableError:
        return _refused(503, "GitHub's signing keys cannot be read now; send the alert again "
                             "later.")
    feedback = [
        {"token_raw": item.token, "token_type": item.type,
         "label": "true_positive" if report_leaked_token(
             request=request, raw=item.token, url=item.url, source=item.source)
         else "false_positive"}
        for item in reported
    ]
    return JsonResponse(feedback, safe=False)


def _body(request: HttpRequest) -> bytes:
    # Bounded before anything is read or parsed: the endpoint is open to anyone.
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise AlertRefusedError(400, "Bad Content-Length.") from None
    if declared > MAX_BODY:
        raise AlertRefusedError(413, f"An alert has at most {MAX_BODY} bytes.")
    body = request.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise AlertRefusedError(413, f"An alert has at most {MAX_BODY} bytes.")
    return body
