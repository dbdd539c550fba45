"""Taking an account back from whoever may hold it, for a recovery (DESIGN §5 "Completion").

``relatch.recovery.completion`` ends every session and known device, hands the addresses over
to the requester's confirmed contact address and disables the password (a reset link to that
address sets a new one); a "this wasn't me" after a completion (``relatch.recovery.objections``)
ends the sessions and devices again. The caller runs these inside its own transaction and
records the event.
"""

from relatch.accounts.emails.staff import make_only_verified_primary
from relatch.accounts.models import KnownDevice, User
from relatch.accounts.sessions.services import delete_other_sessions


def end_every_session(*, user: User) -> dict[str, int]:
    """Sign ``user`` out everywhere and forget every device it signed in from: how many
    ``sessions`` and ``devices`` were ended."""
    return {
        "sessions": delete_other_sessions(user=user, keep_digest=None),
        "devices": KnownDevice.objects.filter(user=user).delete()[0],
    }


def hand_over(*, user: User, address: str) -> list[str]:
    """Make ``address`` the verified primary address of ``user`` and the only verified one,
    and disable the password, so that whoever knew it cannot use it. The addresses
    unverified. Raises AddressVerifiedElsewhereError when ``address`` is verified on another
    account."""
    unverified = make_only_verified_primary(user=user, address=address)
    disable_password(user=user)
    return unverified


def disable_password(*, user: User) -> None:
    """An unusable password (and no failed sign-ins counted): only a reset sets a new one."""
    user.set_unusable_password()
    user.failed_signins = 0
    user.save(update_fields=["password", "failed_signins"])
