"""The secret links of a recovery request: the requester's status link and the owner's
"this wasn't me" link.

Both are HMACs keyed with SECRET_KEY, each under its own purpose string, so one link can never
stand in for the other. They are made when a mail is delivered and never stored; they are
compared in constant time. Rotating ``link_nonce`` revokes every status link sent so far.
"""

import hmac

from django.urls import reverse
from django.utils.crypto import salted_hmac

from relatch.accounts.passwords.reset import reset_link
from relatch.recovery.models import RecoveryRequest
from relatch.web.path_prefix import site_url

_STATUS_PURPOSE = "relatch.recovery.requester.status"
_NOT_ME_PURPOSE = "relatch.recovery.requester.not-me"
STATUS_LINK_BUILDER = "relatch.recovery.requester.links.status_link_for"
NOT_ME_LINK_BUILDER = "relatch.recovery.requester.links.not_me_link_for"
# For a mail that needs more than one secret link (``{{ link.status }}``, ``{{ link.not_me }}``,
# ``{{ link.reset }}``): see ``links_for``.
LINKS_BUILDER = "relatch.recovery.requester.links.links_for"
# A token is a SHA-256 hex digest; anything longer is refused before any work.
MAX_TOKEN_LENGTH = 64


def status_token(recovery: RecoveryRequest) -> str:
    value = f"{recovery.public_id}:{recovery.link_nonce}"
    return salted_hmac(_STATUS_PURPOSE, value, algorithm="sha256").hexdigest()


def not_me_token(recovery: RecoveryRequest) -> str:
    return salted_hmac(_NOT_ME_PURPOSE, recovery.public_id, algorithm="sha256").hexdigest()


def _matches(expected: str, given: str) -> bool:
    # Bytes: any text compares without a TypeError, in constant time.
    return hmac.compare_digest(expected.encode(), given.encode())


def status_token_is_valid(recovery: RecoveryRequest, token: str) -> bool:
    return len(token) <= MAX_TOKEN_LENGTH and _matches(status_token(recovery), token)


def not_me_token_is_valid(recovery: RecoveryRequest, token: str) -> bool:
    return len(token) <= MAX_TOKEN_LENGTH and _matches(not_me_token(recovery), token)


def status_link(recovery: RecoveryRequest) -> str:
    """The requester's secret status page, as an absolute URL built from BASE_URL."""
    path = reverse("requester:status", args=[recovery.public_id, status_token(recovery)])
    return site_url(path)


def not_me_link(recovery: RecoveryRequest) -> str:
    """The account owner's one-click "this wasn't me" page, as an absolute URL."""
    path = reverse("requester:not_me", args=[recovery.public_id, not_me_token(recovery)])
    return site_url(path)


def status_link_for(*, recovery_id: int) -> str:
    """Mail link builder (runs at delivery): the status link of request ``recovery_id``."""
    return status_link(RecoveryRequest.objects.get(pk=recovery_id))


def not_me_link_for(*, recovery_id: int) -> str:
    """Mail link builder (runs at delivery): the "this wasn't me" link of ``recovery_id``."""
    return not_me_link(RecoveryRequest.objects.get(pk=recovery_id))


def links_for(*, recovery_id: int, status: bool = False, not_me: bool = False,
              reset_user_id: int | None = None) -> dict[str, str]:
    """Mail link builder (runs at delivery): the secret links one mail needs, by name.

    Like the single-link builders, it stores nothing: the mail row keeps only these
    arguments, so no status token reaches the database, the outbox list or a log line.
    """
    recovery = RecoveryRequest.objects.get(pk=recovery_id)
    made: dict[str, str] = {}
    if status:
        made["status"] = status_link(recovery)
    if not_me:
        made["not_me"] = not_me_link(recovery)
    if reset_user_id is not None:
        made["reset"] = reset_link(user_id=reset_user_id)
    return made


def find_by_status_token(public_id: str, token: str) -> RecoveryRequest | None:
    """The filed request a status link names, or None when the link is forged or unknown."""
    recovery = _filed(public_id)
    return recovery if recovery and status_token_is_valid(recovery, token) else None


def find_by_not_me_token(public_id: str, token: str) -> RecoveryRequest | None:
    recovery = _filed(public_id)
    return recovery if recovery and not_me_token_is_valid(recovery, token) else None


def _filed(public_id: str) -> RecoveryRequest | None:
    # A NUL cannot be in an id, and PostgreSQL refuses it in a query (a 500, not "not found").
    if len(public_id) > 24 or "\x00" in public_id:
        return None
    rows = RecoveryRequest.objects.select_related("user").filter(public_id=public_id)
    return rows.filter(contact_confirmed_at__isnull=False).first()
