"""Which of the account's factors the second step shows, and which it only links to.

One method at a time: the one asked for (``?method=``, or the form just sent), else the one
this account last signed in or re-authenticated with, else the strongest it has. The others
are "Use another method" links, plain links, so the choice works without JavaScript.

The last method is derived from the account's SecurityEvents (no column to keep in step): the
newest success with an app code or a security key. A recovery code is never remembered: it is
the way back after a loss, and putting it first would teach people to spend their last codes.
"""

from relatch.accounts.models import User
from relatch.audit.models import EventKind, Factor, SecurityEvent
from relatch.mfa.queries import FactorSummary

# Strongest first: a security key answers only the real site (phishing-resistant).
_ORDER = (Factor.WEBAUTHN, Factor.TOTP, Factor.RECOVERY_CODE)
_REMEMBERED = (Factor.WEBAUTHN, Factor.TOTP)
_SUCCESSES = (EventKind.SIGNIN_SUCCEEDED, EventKind.REAUTH_SUCCEEDED)


def offered(summary: FactorSummary) -> list[Factor]:
    """The factors the account can answer with, strongest first."""
    has = {
        Factor.WEBAUTHN: bool(summary.keys),
        Factor.TOTP: summary.app is not None,
        Factor.RECOVERY_CODE: bool(summary.codes and summary.codes.unused),
    }
    return [factor for factor in _ORDER if has[factor]]


def chosen(*, user: User, offers: list[Factor], asked: str = "") -> Factor | None:
    """The factor to show: ``asked`` when the account has it, else the last one used, else the
    strongest. None only for an account with nothing to offer."""
    for factor in offers:
        if factor == asked:
            return factor
    if not offers:
        return None
    last = last_used(user)
    return last if last in offers else offers[0]


def last_used(user: User) -> Factor | None:
    """The factor of ``user``'s newest sign-in or re-authentication with an app or a key.

    One row, newest first, through the ``event_user_resets`` index (user, id; these kinds)."""
    factor = (
        SecurityEvent.objects.filter(user=user, kind__in=_SUCCESSES, factor__in=_REMEMBERED)
        .order_by("-id")
        .values_list("factor", flat=True)
        .first()
    )
    return Factor(factor) if factor else None
