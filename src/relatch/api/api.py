"""The JSON API under /api/v1/ (DESIGN §6): the recovery request's requester and staff sides
and API-token management, with its OpenAPI schema at /api/v1/openapi.json.

Every error is ``{"detail": "<message>"}`` with the fitting status; a body that fails the
schema is a 422 whose ``detail`` names the field (and ``errors`` lists them all). A service's
refusal (any ``relatch.web.refusals.Refusal``) is mapped here, once: its message, its status.
"""

import json
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import ValidationError
from ninja.parser import Parser

from relatch.api import requester, requester_proofs, staff, tokens
from relatch.web.refusals import Refusal


class ObjectBodyParser(Parser):
    """JSON bodies must be objects. ninja's schemas read any value attribute by attribute (for
    ORM objects), so a body of ``5`` or ``[]`` became an object with every field missing: where
    all fields are optional (assign) it was accepted as ``{}`` and unassigned the request. Any
    other JSON value is now refused as unreadable (a 400), before a handler runs."""

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        data = json.loads(request.body)
        if not isinstance(data, dict):
            raise ValueError("The body must be a JSON object.")
        return data


api = NinjaAPI(
    title="Relatch API",
    version="1",
    description=(
        "Account recovery (requester and staff) and API tokens. Requesters authenticate with "
        "`Authorization: Bearer <public_id>.<token>` from their status link; staff with a "
        "staff-purpose API token; token management with the signed-in session."
    ),
    urls_namespace="api",
    parser=ObjectBodyParser(),
    openapi_url="/openapi.json",
    docs_url=None,  # the interactive page loads scripts from a CDN, which the CSP forbids
)


def _where(error: dict[str, Any]) -> str:
    # ("body", "payload", "username") -> "username"; ("query", "state") -> "state"
    parts = [str(p) for p in error.get("loc", ()) if p not in ("body", "payload", "query", "path")]
    return ".".join(parts) or "request"


@api.exception_handler(ValidationError)
def invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    errors = [{"field": _where(e), "message": str(e.get("msg", "Invalid value."))}
              for e in exc.errors]
    first = errors[0] if errors else {"field": "request", "message": "Invalid request."}
    return api.create_response(
        request, {"detail": f"{first['field']}: {first['message']}", "errors": errors}, status=422
    )


@api.exception_handler(Refusal)
def refused(request: HttpRequest, exc: Refusal) -> HttpResponse:
    """A service said no (nothing changed): the same words the page shows, with the status
    its class names (e.g. 409 for the desk, 400 for a proof, 429 for a rate limit)."""
    return api.create_response(request, {"detail": exc.message}, status=exc.status)


@api.exception_handler(Http404)
def not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return api.create_response(request, {"detail": "Not found."}, status=404)


api.add_router("/recovery", requester.router)
api.add_router("/recovery/status/proofs", requester_proofs.router)
api.add_router("/desk", staff.router)
api.add_router("/account", tokens.router)
