"""Who is asked to confirm their recovery information, and what the page shows. No writes."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Exists, OuterRef, Q, QuerySet

from relatch.accounts.models import AccountReminders, Email, User
from relatch.mfa.models import TotpDevice, WebAuthnCredential
from relatch.mfa.queries import CodesSummary, FactorSummary, factor_summary

# "Every 12 months" (issue 17).
ASK_EVERY = timedelta(days=365)


@dataclass(frozen=True)
class AddressRow:
    """A verified address; ``receiving`` False when its mail bounced for good."""

    address: str
    primary: bool
    receiving: bool


@dataclass(frozen=True)
class RecoveryInfo:
    """The page's read model: the account's ways back in, and when it last confirmed them."""

    addresses: tuple[AddressRow, ...]
    factors: FactorSummary
    confirmed_at: datetime | None
    asked_at: datetime | None

    @property
    def codes(self) -> CodesSummary | None:
        return self.factors.codes

    @property
    def receiving_addresses(self) -> int:
        return sum(1 for row in self.addresses if row.receiving)


def recovery_info(*, user: User) -> RecoveryInfo:
    """Everything the page lists for ``user``: verified addresses (primary first), factors,
    recovery-code counts (never a code), and the dates of the last ask and confirmation."""
    emails = user.emails.filter(verified=True).order_by("-primary", "created_at", "id")
    reminders = AccountReminders.objects.filter(user=user).first()
    return RecoveryInfo(
        addresses=tuple(
            AddressRow(address=e.address, primary=e.primary,
                       receiving=e.not_receiving_since is None)
            for e in emails
        ),
        factors=factor_summary(user=user),
        confirmed_at=reminders.recovery_info_confirmed_at if reminders else None,
        asked_at=reminders.recovery_info_asked_at if reminders else None,
    )


def _has_factor(*, added_by: datetime | None = None) -> Q:
    """Accounts with an authenticator app or a security key (added by ``added_by``, if
    given): the rule of ``relatch.mfa.policy.has_second_factor``, as a filter."""
    since = {} if added_by is None else {"created_at__lte": added_by}
    app = TotpDevice.objects.filter(user=OuterRef("pk"), **since)
    key = WebAuthnCredential.objects.filter(user=OuterRef("pk"), **since)
    return Q(Exists(app)) | Q(Exists(key))


def accounts_in_scope() -> QuerySet[User]:
    """The accounts the daily pass walks through, by id: active, not frozen, with a second
    factor."""
    return User.objects.filter(is_active=True, is_frozen=False).filter(_has_factor())


def due_for_check(*, ids: list[int], now: datetime) -> list[int]:
    """Of the accounts ``ids`` (one keyset batch), those to ask now: a second factor at least
    12 months old, an address that receives mail, and neither asked nor confirmed within the
    last 12 months."""
    cutoff = now - ASK_EVERY
    recent = AccountReminders.objects.filter(user=OuterRef("pk")).filter(
        Q(recovery_info_asked_at__gt=cutoff) | Q(recovery_info_confirmed_at__gt=cutoff)
    )
    receiving = Email.objects.filter(
        user=OuterRef("pk"), verified=True, not_receiving_since__isnull=True
    )
    due = (
        accounts_in_scope()
        .filter(pk__in=ids)
        .filter(_has_factor(added_by=cutoff))
        .filter(Exists(receiving))
        .filter(~Exists(recent))
        .order_by("pk")
    )
    return list(due.values_list("pk", flat=True))
