"""Reading an alert: its signature first, then its body.

GitHub signs the raw body: ``Github-Public-Key-Identifier`` names the key,
``Github-Public-Key-Signature`` is the base64 of a DER ECDSA P-256 / SHA-256 signature. The
body is parsed only after the signature verifies, and only as GitHub sends it: a JSON list of
``{"token", "type", "url", "source"}``.
"""

import base64
import binascii
import json
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from relatch.index.tokens.scanning import keys

IDENTIFIER_HEADER = "Github-Public-Key-Identifier"
SIGNATURE_HEADER = "Github-Public-Key-Signature"
# GitHub batches matches; a thousand in one alert is far above what it sends.
MAX_ITEMS = 1000
# A DER P-256 signature is at most 72 bytes (about 100 in base64); identifiers are hex.
MAX_SIGNATURE_TEXT = 512
MAX_IDENTIFIER = 256
MAX_TEXT = 2048


class AlertRefusedError(Exception):
    """An alert refused as a whole; nothing changed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Reported:
    """One match GitHub reports. ``token`` is left out of repr so it never reaches a log."""

    token: str = field(repr=False)
    type: str
    url: str
    source: str


def check_signature(*, body: bytes, identifier: str, signature: str) -> None:
    """Raise AlertRefusedError unless ``signature`` is GitHub's key ``identifier``'s over
    ``body``; keys.KeysUnavailableError when the keys cannot be read."""
    if not identifier or not signature:
        raise AlertRefusedError(400, f"Sign the alert: {IDENTIFIER_HEADER} and "
                                     f"{SIGNATURE_HEADER} are both needed.")
    if len(identifier) > MAX_IDENTIFIER or len(signature) > MAX_SIGNATURE_TEXT:
        raise AlertRefusedError(400, "The signature headers are too long.")
    try:
        der = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise AlertRefusedError(400, f"{SIGNATURE_HEADER} is not base64.") from None
    key = keys.public_key(identifier)
    if key is None:
        raise AlertRefusedError(403, "GitHub publishes no key with that identifier.")
    try:
        key.verify(der, body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        # A forged alert, or a body changed after GitHub signed it.
        raise AlertRefusedError(403, "The signature does not match the alert.") from None


def parse_alert(body: bytes) -> list[Reported]:
    """The matches of a signed body; AlertRefusedError (400) if it is not GitHub's format."""
    try:
        items = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise AlertRefusedError(400, "The alert is not JSON.") from None
    if not isinstance(items, list):
        raise AlertRefusedError(400, "The alert is not a list of matches.")
    if len(items) > MAX_ITEMS:
        raise AlertRefusedError(413, f"An alert has at most {MAX_ITEMS} matches.")
    return [_reported(item) for item in items]


def _reported(item: object) -> Reported:
    if not isinstance(item, dict) or not isinstance(item.get("token"), str):
        raise AlertRefusedError(400, "Each match needs a token.")
    texts = [item.get(name, "") for name in ("type", "url", "source")]
    if not all(isinstance(text, str) for text in texts):
        raise AlertRefusedError(400, "type, url and source are text.")
    kind, url, source = (str(text)[:MAX_TEXT] for text in texts)
    return Reported(token=item["token"], type=kind, url=url, source=source)
