"""Reads for the two-step sign-in page and the account check-up.

Nothing here changes state: the factor packages do.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Q

from relatch.accounts.models import User
from relatch.mfa.models import RecoveryCodeSet, TotpDevice, WebAuthnCredential

# "When two or fewer remain the account page asks for a new set" (issue 3 §3): with two codes
# left, one bad week (a lost phone, then a lost key) leaves the owner with nothing.
CODES_RUNNING_LOW_AT = 2


@dataclass(frozen=True)
class AppSummary:
    """The authenticator app, if one is set up."""

    added_at: datetime
    last_used_at: datetime | None


@dataclass(frozen=True)
class KeySummary:
    """One security key or passkey."""

    id: int
    label: str
    added_at: datetime
    last_used_at: datetime | None
    passkey: bool


@dataclass(frozen=True)
class CodesSummary:
    """The current set of recovery codes: counts and dates only, never a code or a hash."""

    made_at: datetime
    confirmed_at: datetime | None
    unused: int
    total: int

    @property
    def confirmed(self) -> bool:
        return self.confirmed_at is not None

    @property
    def running_low(self) -> bool:
        return self.unused <= CODES_RUNNING_LOW_AT


@dataclass(frozen=True)
class FactorSummary:
    """What an account has set up for two-step sign-in and for getting back in."""

    app: AppSummary | None
    keys: tuple[KeySummary, ...]
    codes: CodesSummary | None

    @property
    def has_second_factor(self) -> bool:
        """Same rule as ``relatch.mfa.policy.has_second_factor``: codes are not a factor."""
        return self.app is not None or bool(self.keys)

    @property
    def second_factor_count(self) -> int:
        return (1 if self.app is not None else 0) + len(self.keys)

    @property
    def phishing_resistant(self) -> bool:
        """A security key answers only the real site's origin; an app code can be retyped."""
        return bool(self.keys)

    @property
    def codes_need_attention(self) -> bool:
        """No set, a set never proven saved, or two or fewer codes left."""
        return self.codes is None or not self.codes.confirmed or self.codes.running_low


def _app(user: User) -> AppSummary | None:
    device = TotpDevice.objects.filter(user=user).first()
    if device is None:
        return None
    return AppSummary(added_at=device.created_at, last_used_at=device.last_used_at)


def _keys(user: User) -> tuple[KeySummary, ...]:
    credentials = WebAuthnCredential.objects.filter(user=user).order_by("created_at", "id")
    return tuple(
        KeySummary(
            id=c.pk,
            label=c.label,
            added_at=c.created_at,
            last_used_at=c.last_used_at,
            passkey=c.discoverable,
        )
        for c in credentials
    )


def _codes(user: User) -> CodesSummary | None:
    code_set = RecoveryCodeSet.objects.filter(user=user).first()
    if code_set is None:
        return None
    counts = code_set.codes.aggregate(
        total=Count("id"), unused=Count("id", filter=Q(used_at__isnull=True))
    )
    return CodesSummary(
        made_at=code_set.created_at,
        confirmed_at=code_set.confirmed_at,
        unused=counts["unused"],
        total=counts["total"],
    )


def factor_summary(*, user: User) -> FactorSummary:
    """Everything the two-step sign-in page and the check-up show about ``user``'s factors."""
    return FactorSummary(app=_app(user), keys=_keys(user), codes=_codes(user))
