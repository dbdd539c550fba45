"""Time-based one-time passwords (RFC 6238) and the sealing of their secrets.

Pure functions with an injectable clock: no database, no request. The services decide what a
match means for an account (replay, enrolment); this module only says which step a code matches.
"""

import base64
import binascii
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from io import BytesIO

import pyotp
import segno
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

ISSUER = "Relatch"
STEP_SECONDS = 30  # RFC 6238 default; every authenticator app assumes it
DIGITS = 6  # NIST N25: at least 6 digits
SECRET_BYTES = 20  # 160 bits, RFC 4226's recommendation (NIST N25 asks for at least 112)
# One step either side: enough for typing and a small drift (NIST N28), no more.
ACCEPT_WINDOW = 1
# A code that matches within five minutes but outside the window comes from a device whose
# clock is off: say so, instead of a bare "wrong code" that leaves the user guessing.
SKEW_WINDOW = 10
# Whitespace and hyphens are how apps and people group digits ("123 456"); nothing else passes.
_SEPARATORS = re.compile(r"[\s-]+")
_CODE = re.compile(r"[0-9]{6}")
# Anything longer than this is not someone typing a code: refuse it before touching it.
MAX_CODE_INPUT = 32

_HKDF_INFO = b"relatch/mfa/totp-secret/v1"
_SEALED_PREFIX = "v1:"
_NONCE_BYTES = 12


class SecretUnreadableError(Exception):
    """A sealed secret that the configured keys cannot open (another SECRET_KEY, or tampering)."""


@dataclass(frozen=True)
class StepMatch:
    """The step a code matched, and how far (in steps) it is from the server's current step."""

    step: int
    offset: int


def new_secret() -> str:
    """A fresh shared secret: 160 random bits as 32 base32 characters (no padding)."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def grouped(secret: str) -> str:
    """The secret in groups of four, as people copy it by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def normalize_code(text: str) -> str | None:
    """The six digits of ``text``, or None when it cannot be a code (too long, not ASCII digits,
    wrong length). ASCII only: ``str.isdigit`` would let other scripts' digits through."""
    if len(text) > MAX_CODE_INPUT:
        return None
    code = _SEPARATORS.sub("", text)
    return code if _CODE.fullmatch(code) else None


def time_step(now: datetime) -> int:
    """The RFC 6238 counter for ``now`` (an aware datetime from the server clock)."""
    return int(now.timestamp()) // STEP_SECONDS


def code_at(secret: str, step: int) -> str:
    """The code an app with ``secret`` shows during ``step``."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).generate_otp(step)


def match_step(*, secret: str, code: str, now: datetime, window: int) -> StepMatch | None:
    """The newest step within ``window`` steps of ``now`` whose code is ``code``, or None.

    pyotp's own verify does not say which step matched, and replay protection needs it. Every
    candidate is compared, in constant time, so timing does not tell which one matched.
    """
    current = time_step(now)
    found: StepMatch | None = None
    for offset in range(-window, window + 1):
        candidate = code_at(secret, current + offset)
        if hmac.compare_digest(candidate.encode(), code.encode()):
            found = StepMatch(step=current + offset, offset=offset)
    return found


def provisioning_uri(*, secret: str, account_name: str) -> str:
    """The otpauth:// URI an app reads from the QR code."""
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    return totp.provisioning_uri(name=account_name, issuer_name=ISSUER)


def qr_svg(uri: str) -> bytes:
    """The QR code of ``uri`` as an SVG document, made on the server (no third party sees it)."""
    out = BytesIO()
    qr = segno.make(uri, micro=False, error="m")
    qr.save(out, kind="svg", scale=5, border=4, xmldecl=False, dark="#000", light="#fff")
    return out.getvalue()


def qr_data_uri(uri: str) -> str:
    """The QR code as a data: URI for an <img> (the CSP allows data: images, not inline styles)."""
    return "data:image/svg+xml;base64," + base64.b64encode(qr_svg(uri)).decode("ascii")


# --- sealing the secret at rest -------------------------------------------------------------


def _key(signing_key: str | bytes) -> bytes:
    # A key of its own, derived from the signing key: the secret's encryption never shares a
    # key with cookies or tokens, and rotating SECRET_KEY (with fallbacks) still opens old rows.
    raw = signing_key.encode() if isinstance(signing_key, str) else signing_key
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(raw)


def seal(secret: str, *, bound_to: str) -> str:
    """Encrypt ``secret`` with AES-GCM under a key derived from SECRET_KEY.

    ``bound_to`` (e.g. "user:42") is authenticated with it: a sealed secret copied to another
    account's row does not open there.
    """
    nonce = secrets.token_bytes(_NONCE_BYTES)
    sealed = AESGCM(_key(settings.SECRET_KEY)).encrypt(
        nonce, secret.encode("ascii"), bound_to.encode()
    )
    return _SEALED_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")


def unseal(sealed: str, *, bound_to: str) -> str:
    """The secret inside ``sealed``; raises SecretUnreadableError if no configured key opens it."""
    blob = _decode(sealed)
    nonce, body = blob[:_NONCE_BYTES], blob[_NONCE_BYTES:]
    for signing_key in [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]:
        try:
            plain = AESGCM(_key(signing_key)).decrypt(nonce, body, bound_to.encode())
        except InvalidTag:
            continue
        return plain.decode("ascii")
    raise SecretUnreadableError(
        "An authenticator app secret cannot be decrypted: it was sealed with another "
        "SECRET_KEY (restore it, or list it in SECRET_KEY_FALLBACKS) or it was altered."
    )


def _decode(sealed: str) -> bytes:
    if not sealed.startswith(_SEALED_PREFIX):
        raise SecretUnreadableError("An authenticator app secret is not in the sealed format.")
    try:
        blob = base64.urlsafe_b64decode(sealed.removeprefix(_SEALED_PREFIX).encode("ascii"))
    except (binascii.Error, ValueError) as exc:
        raise SecretUnreadableError("An authenticator app secret is not valid base64.") from exc
    if len(blob) <= _NONCE_BYTES:
        raise SecretUnreadableError("An authenticator app secret is truncated.")
    return blob
