"""Security notices to an account's addresses (NIST N9, ASVS 6.3.7)."""

from collections.abc import Iterable
from typing import Any

from relatch.accounts.models import User
from relatch.notify.services import send_mail


def verified_addresses(user: User) -> list[str]:
    """Where security mail goes: the verified addresses that still receive mail (an address
    whose mail bounced for good hears nothing until it is verified again)."""
    usable = user.emails.filter(verified=True, not_receiving_since__isnull=True)
    return list(usable.values_list("address", flat=True))


def announce_to_account(
    *,
    user: User,
    template: str,
    context: dict[str, Any] | None = None,
    also_to: Iterable[str] = (),
) -> None:
    """Tell every verified address of ``user`` (and ``also_to``) what happened, with the
    "this wasn't me" instructions. Sent after the surrounding transaction commits."""
    send_mail(
        to=[*verified_addresses(user), *also_to],
        template=template,
        context={"username": user.username, "security_notice": True, **(context or {})},
    )
