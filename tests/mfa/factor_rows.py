"""Factor rows made directly, for pages that only read them (the two-step sign-in page, the
check-up). Enrolment itself is tested through its own pages in the factor packages' tests."""

from datetime import datetime

from django.utils import timezone

from relatch.accounts.models import User
from relatch.mfa.models import RecoveryCode, RecoveryCodeSet, TotpDevice, WebAuthnCredential


def add_app(user: User, *, last_used_at: datetime | None = None, **fields: object) -> TotpDevice:
    return TotpDevice.objects.create(
        user=user, encrypted_secret="x", last_used_at=last_used_at, **fields
    )


def add_key(
    user: User, label: str, *, last_used_at: datetime | None = None, **fields: object
) -> WebAuthnCredential:
    return WebAuthnCredential.objects.create(
        user=user,
        label=label,
        credential_id=f"cred-{user.pk}-{label}",
        public_key=b"not a real key",
        last_used_at=last_used_at,
        **fields,
    )


def add_codes(
    user: User, *, used: int = 0, total: int = 8, confirmed: bool = True, **fields: object
) -> RecoveryCodeSet:
    """A set of ``total`` codes, the first ``used`` of them spent."""
    now = timezone.now()
    code_set = RecoveryCodeSet.objects.create(
        user=user, confirmed_at=now if confirmed else None, **fields
    )
    RecoveryCode.objects.bulk_create(
        RecoveryCode(
            code_set=code_set,
            identifier=f"id{i:02d}",
            code_hash="not a real hash",
            used_at=now if i < used else None,
        )
        for i in range(total)
    )
    return code_set
