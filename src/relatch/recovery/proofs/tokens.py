"""The secrets a proof asks back: a branch name and a mailed code.

Neither is stored: each is an HMAC (keyed by SECRET_KEY) over the proof's id and a random
nonce kept in its evidence, so the page can show the branch name again and the mail can be
rendered at delivery, while the database holds only a SHA-256 digest of each.
"""

import hashlib
import hmac
import secrets

from django.conf import settings

BRANCH_PREFIX = "relatch-recovery-"
CODE_DIGITS = 6


def new_nonce() -> str:
    return secrets.token_hex(16)


def _mac(purpose: str, proof_id: int, nonce: str) -> bytes:
    message = f"relatch.recovery.proof.{purpose}:{proof_id}:{nonce}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).digest()


def branch_name(*, proof_id: int, nonce: str) -> str:
    """A branch name safe for git refs: the prefix and 96 bits of hex."""
    return BRANCH_PREFIX + _mac("branch", proof_id, nonce).hex()[:24]


def email_code(*, proof_id: int, nonce: str) -> str:
    """A 6-digit code (NIST N3: short-lived, few attempts)."""
    number = int.from_bytes(_mac("code", proof_id, nonce)[:8], "big") % 10**CODE_DIGITS
    return f"{number:0{CODE_DIGITS}d}"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def matches(secret: str, stored_digest: str) -> bool:
    """Constant-time comparison of a given secret with a stored digest."""
    return bool(stored_digest) and hmac.compare_digest(digest(secret), stored_digest)


def code_for_mail(*, proof_id: int, nonce: str) -> str:
    """Link builder of the recovery_proof_code mail: the code exists only at delivery."""
    return email_code(proof_id=proof_id, nonce=nonce)
