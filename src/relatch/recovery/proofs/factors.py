"""Second factors as recovery proofs: an app code, a recovery code or a security key of the
account (DESIGN §5: "the strongest evidence there is").

Someone who still holds a factor but lost the password and the mailbox proves it here. Each
answer is checked exactly as at sign-in (``relatch.mfa.factor_checks``): under the account's
factor limits, a wrong answer counted there as a failed sign-in with its factor (so the
100-failure cap and the per-IP limits cover this page too, NIST N21) and against the proof's
own five attempts. A recovery code is spent when it proves something; an app code cannot be
replayed. The evidence records when the factor was enrolled: a factor added after the request
was filed counts for nothing (``relatch.recovery.sources``).
"""

from datetime import datetime
from typing import Any

from django.db import transaction
from django.http import HttpRequest

from relatch.accounts.models import User
from relatch.audit.models import EventKind
from relatch.mfa import factor_checks
from relatch.mfa.factor_checks import FactorCheck
from relatch.mfa.models import RecoveryCodeSet, TotpDevice, WebAuthnCredential
from relatch.recovery.models import ProofKind, RecoveryProof
from relatch.recovery.proofs.outcomes import settle
from relatch.recovery.proofs.services import ProofError, Status, count_wrong, open_for_answer
from relatch.recovery.proofs.wording import OTHER_KIND

FACTOR_KINDS = frozenset({ProofKind.TOTP, ProofKind.RECOVERY_CODE, ProofKind.SECURITY_KEY})
_DURING = "recovery_proof"


def has_factor(user: User, kind: str) -> bool:
    """Whether ``user`` has a factor a proof of ``kind`` could use (for staff's choices)."""
    if kind == ProofKind.TOTP:
        return TotpDevice.objects.filter(user=user).exists()
    if kind == ProofKind.SECURITY_KEY:
        return WebAuthnCredential.objects.filter(user=user).exists()
    return RecoveryCodeSet.objects.filter(user=user).exists()


def security_key_options(*, request: HttpRequest, proof: RecoveryProof) -> dict[str, Any] | None:
    """The browser's options to ask the account's keys (a fresh challenge in this session),
    or None when the proof cannot take a key now."""
    from relatch.mfa.webauthn.services import authentication_options

    user = proof.request.user
    if proof.kind != ProofKind.SECURITY_KEY or user is None or not has_factor(user, proof.kind):
        return None
    return authentication_options(request=request, user=user)


@transaction.atomic
def submit_factor(*, request: HttpRequest, proof: RecoveryProof, answer: str) -> bool:
    """True when ``answer`` (a code, or a security key's JSON answer) is a factor of the
    account. Raises ProofError when the proof takes no answer now or a limit stops it."""
    if proof.kind not in FACTOR_KINDS:
        raise ProofError(OTHER_KIND)
    proof = open_for_answer(proof, ProofKind(proof.kind))
    assert proof.request.user is not None  # open_for_answer refuses a request without one
    user = factor_checks.lock_account(proof.request.user)  # one guess at a time
    check = _check(request, proof, user, answer)
    if check.passed:
        return _passed(request, proof, user, check)
    if check.status in (400, 429) and not check.counted:
        raise ProofError(check.message or "That answer could not be read. Try again.")
    factor_checks.record_factor_failure(request=request, user=user, check=check,
                                        kind=EventKind.SIGNIN_FAILED,
                                        details={"during": _DURING})
    return count_wrong(proof, f"wrong {proof.get_kind_display().lower()}")


def _check(request: HttpRequest, proof: RecoveryProof, user: User, answer: str) -> FactorCheck:
    if proof.kind == ProofKind.TOTP:
        return factor_checks.check_app_code(request=request, user=user, code=answer,
                                            during=_DURING)
    if proof.kind == ProofKind.RECOVERY_CODE:
        return factor_checks.check_recovery_code(request=request, user=user, code=answer,
                                                 during=_DURING)
    return factor_checks.check_security_key(request=request, user=user, credential_json=answer,
                                            during=_DURING)


def _passed(request: HttpRequest, proof: RecoveryProof, user: User, check: FactorCheck) -> bool:
    from relatch.mfa.recovery_codes.services import (
        RecoveryCodeAlreadyUsedError,
        spend_recovery_code,
    )

    enrolled = _enrolled_at(user, proof.kind)
    if check.code is not None:
        try:  # spent now: the same code cannot prove anything twice
            spend_recovery_code(request=request, user=user, code=check.code)
        except RecoveryCodeAlreadyUsedError as used:
            raise ProofError("That recovery code was used a moment ago.") from used
    settle(proof, Status.SATISFIED, result=f"{proof.get_kind_display()} of the account",
           enrolled_at=enrolled.isoformat() if enrolled else "")
    return True


def _enrolled_at(user: User, kind: str) -> datetime | None:
    """When the factor of ``kind`` was enrolled (the key that answered; the current code set)."""
    if kind == ProofKind.TOTP:
        device = TotpDevice.objects.filter(user=user).first()
        return device.created_at if device else None
    if kind == ProofKind.SECURITY_KEY:
        # The key that just answered is the one whose use was recorded last.
        key = WebAuthnCredential.objects.filter(user=user, last_used_at__isnull=False).order_by(
            "-last_used_at").first()
        return key.created_at if key else None
    codes = RecoveryCodeSet.objects.filter(user=user).first()
    return codes.created_at if codes else None
