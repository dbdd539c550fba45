"""Who is calling the JSON API.

- The requester: no account. The status link's secret is the credential, sent as
  ``Authorization: Bearer <public_id>.<token>`` so it never sits in a URL that gets logged
  (DESIGN §7). A forged, unknown or unfiled request gets the same 401.
- Staff: a staff-purpose API token (an upload token is refused), whose owner is active, staff
  and has a second factor — a token alone never makes someone staff.
- API-token management: the signed-in browser session, with Django's CSRF check.
"""

from django.http import HttpRequest
from ninja.errors import HttpError
from ninja.security import HttpBearer, SessionAuth

from relatch.accounts.models import User
from relatch.index.models import APIToken
from relatch.index.tokens.services import (
    TokenRefusedError,
    authenticate_token,
    note_token_refusal,
    note_token_use,
)
from relatch.mfa.policy import has_second_factor
from relatch.recovery.models import RecoveryRequest
from relatch.recovery.requester.links import find_by_status_token

# The longest credential worth looking at: a public id, a dot and a SHA-256 hex digest.
MAX_STATUS_CREDENTIAL = 24 + 1 + 64
BAD_STATUS = "This status token is not valid. Use the whole token from your status link."
NOT_STAFF = "Only staff with two-step sign-in can use the recovery desk's API."


class StatusToken(HttpBearer):
    """``Bearer <public_id>.<token>`` from the requester's status link."""

    def authenticate(self, request: HttpRequest, token: str) -> RecoveryRequest:
        public_id, _, secret = token.strip().rpartition(".")
        recovery = None
        if public_id and len(token) <= MAX_STATUS_CREDENTIAL:
            recovery = find_by_status_token(public_id, secret)
        if recovery is None:
            raise HttpError(401, BAD_STATUS)
        return recovery


class StaffToken(HttpBearer):
    """``Bearer relatch-…`` with a staff-purpose token of a staff member."""

    def authenticate(self, request: HttpRequest, token: str) -> User:
        try:
            row = authenticate_token(raw=token, purpose=APIToken.Purpose.STAFF)
        except TokenRefusedError as refusal:
            # The owner of a known token hears of its refused use (a leaked old token tried).
            note_token_refusal(request=request, refusal=refusal)
            # The token's own message: wrong purpose, revoked, expired, or simply invalid.
            raise HttpError(401, refusal.message) from None
        user = row.user
        if not (user.is_active and user.is_staff and has_second_factor(user)):
            raise HttpError(403, NOT_STAFF)
        note_token_use(request=request, token=row)
        return user


class SignedIn(SessionAuth):
    """The browser's session (CSRF-checked by ninja for unsafe methods)."""

    def authenticate(self, request: HttpRequest, key: str | None) -> User | None:
        user = request.user
        return user if isinstance(user, User) and user.is_authenticated else None


status_token = StatusToken()
staff_token = StaffToken()
signed_in = SignedIn()
