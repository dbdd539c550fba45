"""Taking every second factor away from an account, for a completed staff recovery
(``relatch.recovery.completion``, DESIGN §5 "Completion").

Whoever held the account may have enrolled their own authenticator app, security key or
recovery codes, and may have a self-service recovery of their own waiting: all of it goes, and
the owner enrols again. The caller runs this inside its own transaction and records the event.
"""

from django.utils import timezone

from relatch.accounts.models import User
from relatch.mfa.models import RecoveryCodeSet, SelfServiceRecovery, TotpDevice, WebAuthnCredential

# SelfServiceRecovery.closed_by of a recovery that a staff recovery ended.
CLOSED_BY_STAFF_RECOVERY = "staff_recovery"


def remove_every_factor(*, user: User) -> dict[str, int]:
    """Delete ``user``'s authenticator app, security keys and recovery code sets, and cancel
    a waiting self-service recovery. How many of each were deleted (``totp``,
    ``security_keys``, ``recovery_code_sets``); the cancelled recovery is not counted."""
    removed = {
        "totp": TotpDevice.objects.filter(user=user).delete()[0],
        "security_keys": WebAuthnCredential.objects.filter(user=user).delete()[0],
        "recovery_code_sets": RecoveryCodeSet.objects.filter(user=user).delete()[0],
    }
    SelfServiceRecovery.objects.filter(user=user, state=SelfServiceRecovery.State.WAITING).update(
        state=SelfServiceRecovery.State.CANCELLED, closed_at=timezone.now(),
        closed_by=CLOSED_BY_STAFF_RECOVERY,
    )
    return removed
