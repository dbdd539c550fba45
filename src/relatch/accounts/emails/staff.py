"""Address changes that staff make while completing a recovery (relatch.recovery.completion).

A hijacker's first move is often to add an address of their own and remove the owner's. These
undo that: remove an address added during the takeover, and put back, unverified, one that was
removed (its owner verifies it again; an unverified address receives no notice and resets
nothing). The caller is a staff service inside its own transaction; each change is recorded on
the account like the owner's own changes.
"""

from django.db import IntegrityError, transaction
from django.utils import timezone

from relatch.accounts.models import Email, User
from relatch.audit.models import EventKind
from relatch.audit.services import record_event


class AddressVerifiedElsewhereError(Exception):
    """The address is verified on another account: it cannot become this one's."""


def remove_address_for_staff(*, user: User, address: str, staff: User) -> bool:
    """Remove ``address`` from ``user`` (never its primary); False when it is not there."""
    email = Email.objects.filter(user=user, address__iexact=address, primary=False).first()
    if email is None:
        return False
    email.delete()
    record_event(user=user, kind=EventKind.EMAIL_REMOVED,
                 details={"address": email.address, "new_primary": "", "by_staff": staff.username})
    return True


def restore_address_for_staff(*, user: User, address: str, staff: User) -> bool:
    """Put ``address`` back on ``user``, unverified; False when it is there already."""
    if Email.objects.filter(user=user, address__iexact=address).exists():
        return False
    Email.objects.create(user=user, address=address, primary=False, verified=False)
    record_event(user=user, kind=EventKind.EMAIL_ADDED,
                 details={"address": address, "by_staff": staff.username})
    return True


def unverify_all_but(*, user: User, address: str) -> list[str]:
    """Unverify every address of ``user`` except ``address``; the addresses unverified.

    After a recovery only the confirmed contact address is known to be the owner's: any other
    may be a hijacker's (or a lapsed domain's), and a verified address resets passwords."""
    others = Email.objects.filter(user=user, verified=True).exclude(address__iexact=address)
    unverified = list(others.values_list("address", flat=True))
    others.update(verified=False, verified_at=None)
    return unverified


def make_only_verified_primary(*, user: User, address: str) -> list[str]:
    """Make ``address`` the verified primary address of ``user`` (added if missing) and
    unverify every other one; the addresses unverified (``unverify_all_but``). Raises
    AddressVerifiedElsewhereError when ``address`` is verified on another account meanwhile
    (the caller's transaction then undoes the rest)."""
    now = timezone.now()
    unverified = unverify_all_but(user=user, address=address)
    Email.objects.filter(user=user, primary=True).update(primary=False)
    email = Email.objects.filter(user=user, address__iexact=address).first()
    try:
        with transaction.atomic():
            if email is None:
                Email.objects.create(user=user, address=address, primary=True, verified=True,
                                     verified_at=now)
            else:
                Email.objects.filter(pk=email.pk).update(
                    primary=True, verified=True, verified_at=email.verified_at or now
                )
    except IntegrityError as error:
        raise AddressVerifiedElsewhereError(address) from error
    return unverified
