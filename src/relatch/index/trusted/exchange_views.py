"""PyPI's token exchange endpoints, so CI tools work unchanged (uv publish
--trusted-publishing, pypa/gh-action-pypi-publish, twine after a GitLab job's exchange).

- ``GET /_/oidc/audience`` → ``{"audience": …}``: what CI asks its issuer for.
- ``POST /_/oidc/mint-token`` ``{"token": <OIDC JWT>}`` → ``{"success": true, "token":
  "relatch-…", "expires": <unix time>}``, or 422 ``{"message": "Token request failed",
  "errors": [{"code": …, "description": …}]}``; 429 when an address asks too often.
- ``POST /_/oidc/burn-token`` ``{"token": "relatch-…"}`` → 202: the job ends its token early.

JSON in, JSON out, no cookies: CSRF cannot ride on them (csrf_exempt) and no sign-in applies.
"""

import contextlib
import json
import logging
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from relatch.accounts import ratelimit
from relatch.index.trusted.errors import ExchangeRefusedError
from relatch.index.trusted.exchange import burn_token, mint_upload_token
from relatch.index.trusted.verify import MAX_TOKEN_LENGTH, NOT_ENABLED
from relatch.web.client import client_ip

logger = logging.getLogger(__name__)

# Exchanges per client address: a release matrix behind one address mints a few dozen; more
# is someone making us verify signatures and look up publishers in a loop.
MINT_LIMIT = "60/15 minutes"
RETRY_AFTER = 60
# The body is {"token": "<jwt>"}: a little more than the largest token accepted.
MAX_BODY = MAX_TOKEN_LENGTH + 1024
FAILED = "Token request failed"


def _method_not_allowed(allowed: str) -> JsonResponse:
    response = JsonResponse({"message": f"Method not allowed; use {allowed}."}, status=405)
    response["Allow"] = allowed
    return response


def _private(response: JsonResponse) -> JsonResponse:
    # Tokens and refusals alike: never kept by a cache between CI and us.
    response["Cache-Control"] = "no-store"
    return response


@csrf_exempt
@login_not_required
def audience(request: HttpRequest) -> JsonResponse:
    """The audience CI must request its OIDC token for."""
    if request.method not in {"GET", "HEAD"}:
        return _method_not_allowed("GET")
    if not settings.OIDC_ISSUERS:
        return JsonResponse({"message": NOT_ENABLED}, status=403)
    return JsonResponse({"audience": settings.OIDC_AUDIENCE})


def _failure(code: str, description: str, status: int = 422) -> JsonResponse:
    return _private(JsonResponse(
        {"message": FAILED, "errors": [{"code": code, "description": description}]},
        status=status,
    ))


@csrf_exempt
@login_not_required
def mint_token(request: HttpRequest) -> JsonResponse:
    """Exchange a CI provider's OIDC token for a 15-minute upload token."""
    if request.method != "POST":
        return _method_not_allowed("POST")
    if not settings.OIDC_ISSUERS:
        return _failure("not-enabled", NOT_ENABLED)
    if not ratelimit.hit(scope="oidc-mint", key=client_ip(request) or "unknown",
                         limit=MINT_LIMIT):
        response = _failure("rate-limited", "Too many token requests from this address: try "
                            f"again in {RETRY_AFTER} seconds.", status=429)
        response["Retry-After"] = str(RETRY_AFTER)
        return response
    try:
        minted = mint_upload_token(request=request, raw_token=_token_field(request))
    except ExchangeRefusedError as refused:
        # The code and our own message only: never the token.
        logger.info("trusted publishing: exchange refused (%s): %s", refused.code,
                    refused.message)
        return _failure(refused.code, refused.message)
    return _private(JsonResponse({
        "success": True, "token": minted.text, "expires": int(minted.expires_at.timestamp()),
    }))


@csrf_exempt
@login_not_required
def burn(request: HttpRequest) -> JsonResponse:
    """Revoke a live token a trusted publisher minted. 202 whatever was sent: the answer
    does not tell which tokens exist."""
    if request.method != "POST":
        return _method_not_allowed("POST")
    # A malformed body is answered like any other: 202, nothing changed.
    with contextlib.suppress(ExchangeRefusedError):
        burn_token(request=request, raw=_token_field(request))
    return _private(JsonResponse({"message": "Accepted"}, status=202))


def _token_field(request: HttpRequest) -> str:
    """The ``token`` string of a JSON object body, or ExchangeRefusedError (invalid-payload)."""
    shape = 'The request body must be JSON: {"token": "<token>"}.'
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    # Refused before reading: a huge body costs us nothing but this comparison.
    if declared > MAX_BODY:
        raise ExchangeRefusedError("invalid-payload",
                                   f"The request body is larger than {MAX_BODY} bytes.")
    body = request.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise ExchangeRefusedError("invalid-payload",
                                   f"The request body is larger than {MAX_BODY} bytes.")
    try:
        payload: Any = json.loads(body)
    except ValueError:
        raise ExchangeRefusedError("invalid-payload", shape) from None
    token = payload.get("token") if isinstance(payload, dict) else None
    if not isinstance(token, str) or not token:
        raise ExchangeRefusedError("invalid-payload", shape)
    return token
