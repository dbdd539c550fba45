"""A frozen account: after someone says "this wasn't me" to a recovery of it (DESIGN §5).

While frozen, nothing that would let a hijacker keep the account can change: its addresses,
second factors and recovery codes, new API tokens, project roles, uploads and releases. Signing
in, changing the password, revoking a token and ending sessions stay possible: they only ever
take access away. Only staff unfreeze, with a written reason (relatch.recovery.desk).
"""

from django.db import transaction
from django.utils import timezone

from relatch.accounts.models import User
from relatch.audit.models import EventKind
from relatch.audit.services import record_event, record_staff_action

FROZEN_MESSAGE = (
    "{action} is not possible now: this account is frozen while staff review a recovery "
    "request that someone said was not theirs. Staff will write to the account's addresses; "
    "nothing on the account is lost."
)


class AccountFrozenError(Exception):
    """The account is frozen; ``message`` says so in words the page shows as they are."""

    def __init__(self, action: str) -> None:
        self.message = FROZEN_MESSAGE.format(action=action)
        super().__init__(self.message)


def is_frozen(user: User) -> bool:
    """Read from the database, not from a possibly stale ``user`` object."""
    return User.objects.filter(pk=user.pk, is_frozen=True).exists()


def refuse_if_frozen(*, user: User, action: str) -> None:
    """Raise AccountFrozenError when ``user`` is frozen. ``action`` starts the message,
    e.g. "Adding an email address"."""
    if is_frozen(user):
        raise AccountFrozenError(action)


@transaction.atomic
def freeze_account(*, user: User, reason: str) -> bool:
    """Freeze ``user``; True when it was not frozen before. Recorded as a security event."""
    changed = User.objects.filter(pk=user.pk, is_frozen=False).update(
        is_frozen=True, frozen_at=timezone.now()
    )
    if changed:
        record_event(user=user, kind=EventKind.ACCOUNT_FROZEN, details={"reason": reason})
    user.refresh_from_db(fields=["is_frozen", "frozen_at"])
    return bool(changed)


@transaction.atomic
def unfreeze_account(*, user: User, staff: User, reason: str) -> bool:
    """Lift the freeze (staff only; the caller checked the staff member and the reason).
    True when the account was frozen. Writes the security event and the staff record."""
    row = User.objects.select_for_update().get(pk=user.pk)
    if not row.is_frozen:
        return False
    before = {"is_frozen": True, "frozen_at": row.frozen_at.isoformat() if row.frozen_at else ""}
    User.objects.filter(pk=row.pk).update(is_frozen=False, frozen_at=None)
    record_event(user=row, kind=EventKind.ACCOUNT_UNFROZEN, details={"staff": staff.username})
    record_staff_action(staff=staff, subject=row, action="account:unfreeze",
                        reason=reason, before=before, after={"is_frozen": False})
    user.refresh_from_db(fields=["is_frozen", "frozen_at"])
    return True
