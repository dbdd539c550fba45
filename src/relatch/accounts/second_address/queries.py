"""Who is asked to add a second address, and what the account page shows them. No writes."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from relatch.accounts.emails.domains.providers import never_looked_up
from relatch.accounts.models import AccountReminders, User

# "A reminder mail every 90 days (until dismissed for a year)" (issue 17).
REMIND_EVERY = timedelta(days=90)
DISMISS_FOR = timedelta(days=365)

# An address that receives security mail: verified, and its mail does not bounce for good
# (relatch.accounts.notices.verified_addresses sends to exactly these).
USABLE = Q(verified=True, not_receiving_since__isnull=True)


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip().rstrip(".").lower()


def is_custom_domain(address: str) -> bool:
    """Whether ``address`` is on a domain of its own, one that lapses if its holder forgets to
    renew it: not a large mail provider's (the domain check's shipped list), nor a special-use
    name nobody can register (``example.org``, ``.test``)."""
    return not never_looked_up(domain_of(address))


@dataclass(frozen=True)
class SecondAddressPrompt:
    """The account page's banner: the one address that hears about the account."""

    address: str
    domain: str
    custom_domain: bool


def _dismissed(user: User, now: datetime) -> bool:
    return AccountReminders.objects.filter(
        user=user, second_address_dismissed_until__gt=now
    ).exists()


def second_address_prompt(*, user: User) -> SecondAddressPrompt | None:
    """The banner for ``user``, or None: it has two usable addresses or none (the page then
    asks for an address anyway), it said "Not now" less than a year ago, or it is frozen (no
    address can be added until staff unfreeze it)."""
    if user.is_frozen:
        return None
    usable = list(user.emails.filter(USABLE).values_list("address", flat=True)[:2])
    if len(usable) != 1 or _dismissed(user, timezone.now()):
        return None
    [address] = usable
    return SecondAddressPrompt(
        address=address, domain=domain_of(address), custom_domain=is_custom_domain(address)
    )


def accounts_in_scope() -> QuerySet[User]:
    """The accounts the daily pass walks through, by id: active and not frozen."""
    return User.objects.filter(is_active=True, is_frozen=False)


def due_for_reminder(*, ids: list[int], now: datetime) -> list[int]:
    """Of the accounts ``ids`` (one keyset batch), those to mail now: one usable address,
    at least 90 days old, not reminded in the last 90 days and not dismissed."""
    cutoff = now - REMIND_EVERY
    quiet = AccountReminders.objects.filter(user=OuterRef("pk")).filter(
        Q(second_address_reminded_at__gt=cutoff) | Q(second_address_dismissed_until__gt=now)
    )
    due = (
        accounts_in_scope()
        .filter(pk__in=ids, date_joined__lte=cutoff)
        .annotate(usable=Count("emails", filter=Q(emails__verified=True,
                                                  emails__not_receiving_since__isnull=True)))
        .filter(usable=1)
        .filter(~Exists(quiet))
        .order_by("pk")
    )
    return list(due.values_list("pk", flat=True))
