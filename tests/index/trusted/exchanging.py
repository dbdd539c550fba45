"""Helpers for the exchange tests: PyPI's endpoints through the Django client."""

import json
from typing import Any

from django.test import Client

from relatch.index.models import APIToken

AUDIENCE_URL = "/_/oidc/audience"
MINT_URL = "/_/oidc/mint-token"
BURN_URL = "/_/oidc/burn-token"


def mint(client: Client, token: str | None = None, *, body: bytes | None = None) -> Any:
    """POST ``{"token": token}`` (or a raw ``body``) to mint-token, as uv and the GitHub
    action do."""
    data = body if body is not None else json.dumps({"token": token}).encode()
    return client.post(MINT_URL, data=data, content_type="application/json")


def burn(client: Client, token: str) -> Any:
    return client.post(BURN_URL, data=json.dumps({"token": token}),
                       content_type="application/json")


def minted_text(response: Any) -> str:
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["success"] is True
    return str(body["token"])


def refused(response: Any, code: str, *fragments: str) -> str:
    """A 422 in PyPI's shape with ``code``; each fragment in its description (returned)."""
    assert response.status_code == 422, response.content
    body = response.json()
    assert body["message"] == "Token request failed"
    [error] = body["errors"]
    assert error["code"] == code, error
    for fragment in fragments:
        assert fragment in error["description"], error["description"]
    return str(error["description"])


def no_token_minted() -> None:
    assert not APIToken.objects.filter(publisher__isnull=False).exists()
