"""Reads for the security-key pages."""

from relatch.accounts.models import User
from relatch.mfa.models import WebAuthnCredential


def keys_of(user: User) -> list[WebAuthnCredential]:
    """The account's keys, oldest first."""
    return list(user.webauthn_credentials.order_by("created_at", "pk"))
