"""Who Relatch is to a security key: the relying party, taken from RELATCH_BASE_URL.

Read at call time (not import time) so the identity always follows the settings. A key signs
the RP id hash and the browser writes the origin into clientDataJSON: checking both against
these values is what makes a security key phishing-resistant (NIST N32).
"""

from ipaddress import ip_address
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.crypto import salted_hmac

RP_NAME = "Relatch"


def rp_id() -> str:
    """The relying party id: the host name of BASE_URL (no scheme, no port)."""
    hostname = urlsplit(settings.BASE_URL).hostname
    assert hostname, "settings validate that BASE_URL has a host"
    return hostname


def rp_origin() -> str:
    """The only origin a ceremony may come from: BASE_URL's scheme://host[:port]."""
    parts = urlsplit(settings.BASE_URL)
    return f"{parts.scheme}://{parts.netloc}"


def rp_id_is_ip_address() -> bool:
    """Browsers refuse security keys on a site reached by IP address (the RP id must be a
    domain); the pages say so instead of failing with a browser error."""
    try:
        ip_address(rp_id())
    except ValueError:
        return False
    return True


def user_handle(user_pk: int) -> bytes:
    """The opaque account id a key stores with a passkey: stable (so re-registering on the
    same authenticator replaces rather than duplicates) and unguessable (no username or
    database id leaks to the authenticator, as WebAuthn asks)."""
    return salted_hmac(
        "relatch.mfa.webauthn.user_handle", str(user_pk), algorithm="sha256"
    ).digest()
