"""The one-click cancel link of a self-service recovery, mailed to every verified address.

The token names the recovery, signed; it is made at delivery and never stored. It works while
the recovery waits (cancelling closes it, so a second click finds nothing to cancel).
"""

from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.urls import reverse

from relatch.web.path_prefix import site_url

_SALT = "relatch.mfa.selfservice.cancel"
LINK_BUILDER = "relatch.mfa.selfservice.tokens.cancel_link"
# Longer than any wait an operator would configure, plus time to read old mail.
_EXTRA_VALIDITY = timedelta(days=30)


class CancelTokenError(Exception):
    """Garbled, truncated, signed with another key, or too old."""


def make_cancel_token(recovery_id: int) -> str:
    return signing.dumps({"r": recovery_id}, salt=_SALT)


def read_cancel_token(token: str) -> int:
    """The recovery id in ``token``; raises CancelTokenError."""
    max_age = settings.SELF_RECOVERY_WAIT + _EXTRA_VALIDITY
    try:
        data = signing.loads(token, salt=_SALT, max_age=max_age)
    except (signing.BadSignature, ValueError, UnicodeError) as exc:
        raise CancelTokenError from exc
    if not (isinstance(data, dict) and isinstance(data.get("r"), int)):
        raise CancelTokenError
    return int(data["r"])


def cancel_link(*, recovery_id: int) -> str:
    """Link builder for the selfrecovery_started mail."""
    token = make_cancel_token(recovery_id)
    return site_url(reverse("selfrecovery:cancel", kwargs={"token": token}))
