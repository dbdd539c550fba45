"""Per-message return paths (VERP): ``bounces+<id>-<mac>@<RELATCH_BOUNCE_DOMAIN>``.

Each message leaves with its own envelope sender, so the delivery-status notification a mail
server sends back (to that envelope sender) names the OutgoingEmail it is about. The token is
the row's id and an HMAC of it with the secret key: nobody without the key can make one, so a
forged notification cannot name someone else's message, and with it someone else's address.

Lower case and digits only: some mail servers fold the local part's case.
"""

import re

from django.conf import settings
from django.utils.crypto import constant_time_compare, salted_hmac

LOCAL_PREFIX = "bounces+"
_SALT = "relatch.notify.verp"
_MAC_LENGTH = 20  # hex digits: 80 bits
_MAX_ID = 2**63 - 1
# A VERP address anywhere in a text (a header, an envelope recipient, a DSN field).
ADDRESS_RE = re.compile(r"bounces\+([0-9]{1,19})-([0-9a-f]{1,64})@", re.IGNORECASE)


def _mac(outgoing_id: int, secret: str) -> str:
    digest = salted_hmac(_SALT, str(outgoing_id), secret=secret, algorithm="sha256")
    return digest.hexdigest()[:_MAC_LENGTH]


def token(outgoing_id: int) -> str:
    """The unforgeable name of an OutgoingEmail row, for its return path."""
    return f"{outgoing_id}-{_mac(outgoing_id, settings.SECRET_KEY)}"


def return_path(outgoing_id: int) -> str | None:
    """The envelope sender of the message ``outgoing_id``; None when VERP is off."""
    if not settings.VERP_ENABLED:
        return None
    return f"{LOCAL_PREFIX}{token(outgoing_id)}@{settings.BOUNCE_DOMAIN}"


def outgoing_id(text: str) -> int | None:
    """The OutgoingEmail id the first genuine return path in ``text`` names (its token made
    with the secret key now in use, or one it replaced); None when every one is forged or
    garbled, or there is none.

    The domain is not checked: mail sent before RELATCH_BOUNCE_DOMAIN changed still bounces
    to the old one, and the token alone is the proof.
    """
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    for match in ADDRESS_RE.finditer(text):
        number, mac = int(match.group(1)), match.group(2).lower()
        if not 0 < number <= _MAX_ID:
            continue
        if any(constant_time_compare(mac, _mac(number, secret)) for secret in keys):
            return number
    return None


def looks_like_return_path(text: str) -> bool:
    """Whether ``text`` holds something shaped like a return path (genuine or not)."""
    return ADDRESS_RE.search(text) is not None
