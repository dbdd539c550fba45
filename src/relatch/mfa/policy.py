"""What an account's second factors allow: the one place later issues ask.

A second factor is an authenticator app or a security key. Recovery codes are a way back in,
not a factor of their own: they never count as having two-step sign-in.
"""

from collections.abc import Callable

from relatch.accounts.models import User
from relatch.mfa.models import TotpDevice, WebAuthnCredential
from relatch.web.refusals import Refusal


class SecondFactorRequiredError(Refusal):
    """The action needs an account with an authenticator app or a security key (a 403)."""

    status = 403

    def __init__(self, action: str) -> None:
        self.message = (
            f"{action} needs two-step sign-in. Add an authenticator app or a security key "
            "to your account first."
        )
        super().__init__(self.message)


def has_totp(user: User) -> bool:
    return TotpDevice.objects.filter(user=user).exists()


def has_webauthn(user: User) -> bool:
    return WebAuthnCredential.objects.filter(user=user).exists()


def has_second_factor(user: User) -> bool:
    """True when the account signs in with an authenticator app or a security key."""
    return has_totp(user) or has_webauthn(user)


def require_second_factor(*, user: User, action: str) -> None:
    """Raise SecondFactorRequiredError unless ``user`` has a second factor.

    Uploading and managing projects (issue 4) call this before anything else.
    """
    if not has_second_factor(user):
        raise SecondFactorRequiredError(action)


class _ProjectOwnership:
    """Who owns projects is the index's to say, and the index sits above mfa: it fills this in
    when it starts (relatch.index.apps), so mfa never imports it."""

    check: Callable[[User], bool] | None = None


def answer_project_ownership(check: Callable[[User], bool]) -> None:
    """The index registers how to tell whether an account owns a project."""
    _ProjectOwnership.check = check


def owns_projects(user: User) -> bool:
    """Whether the account is an owner of at least one project."""
    check = _ProjectOwnership.check
    # Without the index nobody can own a project; with it, a missing answer would silently
    # weaken every rule that protects owners, so it is an error, not False.
    if check is None:
        raise RuntimeError("The package index has not registered project ownership.")
    return check(user)


def refusal_to_remove_factor(*, user: User, remaining_after: int) -> str | None:
    """Why a second factor may not be removed, or None when it may.

    ``remaining_after`` is how many second factors the account keeps after the removal.
    """
    if remaining_after == 0 and owns_projects(user):
        return (
            "This is your last second factor and your account owns projects: projects need "
            "two-step sign-in to stay safe. Add another authenticator app or security key first."
        )
    return None
