"""WebAuthn challenges: random, kept server side in the session that asked, single use, and
short-lived (ASVS 6.6.2: bound to the original request).

The browser never chooses the challenge: it only echoes it, signed, in clientDataJSON. A
response is therefore accepted once, in this session, within CHALLENGE_MAX_AGE.
"""

import hashlib
import secrets
import time
from enum import StrEnum

from django.core.cache import cache
from django.http import HttpRequest
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url

from relatch.mfa.webauthn.errors import WebAuthnError

CHALLENGE_MAX_AGE = 5 * 60  # seconds
CHALLENGE_BYTES = 32
_SESSION_PREFIX = "relatch_webauthn_"

NO_CHALLENGE = (
    "This security key request was already used, or was not started in this browser. "
    "Try again."
)
EXPIRED = "This security key request expired. Try again."


class Purpose(StrEnum):
    REGISTER = "register"
    AUTHENTICATE = "authenticate"


def issue_challenge(request: HttpRequest, *, purpose: Purpose, user_pk: int | None) -> bytes:
    """A fresh challenge for ``purpose``, replacing any earlier one of this session."""
    challenge = secrets.token_bytes(CHALLENGE_BYTES)
    request.session[_SESSION_PREFIX + purpose] = {
        "challenge": bytes_to_base64url(challenge),
        "user": user_pk,
        "expires": int(time.time()) + CHALLENGE_MAX_AGE,
    }
    return challenge


def take_challenge(request: HttpRequest, *, purpose: Purpose, user_pk: int | None) -> bytes:
    """Remove and return this session's challenge for ``purpose``.

    Popped before anything is verified: whatever the outcome, it cannot be tried twice.
    """
    stored = request.session.pop(_SESSION_PREFIX + purpose, None)
    if not isinstance(stored, dict) or not isinstance(stored.get("challenge"), str):
        raise WebAuthnError(NO_CHALLENGE, reason="no_challenge")
    # A challenge issued for one account's sign-in is not good for another's.
    if stored.get("user") != user_pk:
        raise WebAuthnError(NO_CHALLENGE, reason="no_challenge")
    expires = stored.get("expires")
    if not isinstance(expires, int) or time.time() > expires:
        raise WebAuthnError(EXPIRED, reason="expired")
    challenge = base64url_to_bytes(stored["challenge"])
    _spend(challenge)
    return challenge


def _spend(challenge: bytes) -> None:
    # Two requests carrying the same session cookie can both load the session before either
    # saves it; the cache's atomic add lets only the first of them use the challenge.
    marker = "relatch:webauthn:spent:" + hashlib.sha256(challenge).hexdigest()
    if not cache.add(marker, 1, timeout=CHALLENGE_MAX_AGE + 60):
        raise WebAuthnError(NO_CHALLENGE, reason="no_challenge")
