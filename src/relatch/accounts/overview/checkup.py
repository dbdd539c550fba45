"""The security check-up on the account page: what protects the account, what to do next.

Each check looks at one thing and returns one item, or None when it has nothing to say (the
phishing check, for an account with no second factor, leaves it to the two-step item). Later
features add their own check function to ``CHECKS``.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import Q
from django.urls import reverse

from relatch.accounts.models import User
from relatch.accounts.sessions.queries import session_count
from relatch.audit.models import EventKind, SecurityEvent
from relatch.mfa.policy import has_second_factor
from relatch.mfa.queries import FactorSummary, factor_summary


@dataclass(frozen=True)
class CheckupItem:
    """One line of the check-up. ``ok`` False means the user should act on ``advice``."""

    ok: bool
    title: str
    advice: str
    link_name: str | None = None  # a URL name, reversed when shown
    link_label: str = ""
    url: str = ""  # an explicit address, for links a URL name cannot express

    @property
    def href(self) -> str:
        if self.url:
            return self.url
        return reverse(self.link_name) if self.link_name else ""


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def primary_address_check(user: User) -> CheckupItem:
    """Mail about the account goes first to the primary address: it must be one that works."""
    primary = user.emails.filter(primary=True).first()
    if primary is not None and primary.verified:
        return CheckupItem(
            ok=True,
            title=f"Your primary address {primary.address} is verified",
            advice="Notices about your account's security are sent to it.",
            link_name="emails:manage",
            link_label="Manage addresses",
        )
    return CheckupItem(
        ok=False,
        title="Your primary address is not verified",
        advice="Verify it, or make a verified address primary, so mail about your account "
        "reaches you.",
        link_name="emails:manage",
        link_label="Manage addresses",
    )


def second_address_check(user: User) -> CheckupItem:
    """NIST N10: at least two notification addresses, so losing one mailbox loses no notices."""
    verified = user.emails.filter(verified=True).count()
    if verified >= 2:
        return CheckupItem(
            ok=True,
            title=f"You have {verified} verified addresses",
            advice="Every one of them hears about changes to your account, so losing one "
            "mailbox does not leave you in the dark.",
            link_name="emails:manage",
            link_label="Manage addresses",
        )
    return CheckupItem(
        ok=False,
        title="Add a second email address",
        advice="Only one verified address hears about changes to your account. If you lose "
        "that mailbox, nobody can warn you. Add and verify another address you control, "
        "ideally with a different provider.",
        link_name="emails:manage",
        link_label="Add an address",
    )


def password_check(user: User) -> CheckupItem:
    if user.has_usable_password():
        return CheckupItem(
            ok=True,
            title="Your account has a password",
            advice="Use it only for Relatch, and change it if anyone else might know it.",
            link_name="passwords:change",
            link_label="Change password",
        )
    return CheckupItem(
        ok=False,
        title="Your account has no usable password",
        advice="You cannot sign in with a password right now. Set one through a password "
        "reset: choose \u201cForgot your password?\u201d on the sign-in page.",
    )


def failed_signins_since_previous_signin(user: User) -> int:
    """Failed sign-ins since the sign-in before the latest one (all, if there is none).

    The latest sign-in is usually the owner's own, made just now: failures shortly before it
    are exactly the ones they need to hear about (ASVS 6.3.5, OWASP MFA4).
    """
    failures = SecurityEvent.objects.filter(user=user, kind=EventKind.SIGNIN_FAILED)
    previous = (
        SecurityEvent.objects.filter(user=user, kind=EventKind.SIGNIN_SUCCEEDED)
        .order_by("-created_at", "-id")[1:2]
        .first()
    )
    if previous is not None:
        failures = failures.filter(
            Q(created_at__gt=previous.created_at)
            | Q(created_at=previous.created_at, id__gt=previous.id)
        )
    return failures.count()


def failed_signins_check(user: User) -> CheckupItem:
    """ASVS 6.3.5: tell the owner about failed attempts, which may be someone guessing."""
    failed = failed_signins_since_previous_signin(user)
    if failed == 0:
        return CheckupItem(
            ok=True,
            title="No failed sign-ins since your previous sign-in",
            advice="Failed attempts would show up here and in your security history.",
            link_name="account:history",
            link_label="Security history",
        )
    return CheckupItem(
        ok=False,
        title=f"{_plural(failed, 'failed sign-in')} since your previous sign-in",
        advice="If that wasn't you, someone may be guessing your password: change your "
        "password and look through your security history.",
        link_name="passwords:change",
        link_label="Change password",
    )


def sessions_check(user: User) -> CheckupItem:
    count = session_count(user=user)
    if count <= 1:
        return CheckupItem(
            ok=True,
            title="Only one browser is signed in to your account",
            advice="You can see and end your sessions at any time.",
            link_name="sessions:list",
            link_label="Sessions",
        )
    return CheckupItem(
        ok=False,
        title=f"{_plural(count, 'browser')} are signed in to your account",
        advice="Review your sessions and end any you don't recognise.",
        link_name="sessions:list",
        link_label="Review sessions",
    )


def _factor_names(factors: FactorSummary) -> str:
    names = ["your authenticator app"] if factors.app else []
    if len(factors.keys) == 1:
        names.append("your security key")
    elif factors.keys:
        names.append(f"one of your {len(factors.keys)} security keys")
    return " or ".join(names)


def two_step_check(user: User) -> CheckupItem:
    """A password leaks through reuse, phishing and guessing; a second factor means a leaked
    password alone no longer signs anyone in."""
    if has_second_factor(user):
        named = _factor_names(factor_summary(user=user))
        return CheckupItem(
            ok=True,
            title="Two-step sign-in is on",
            advice=f"Signing in needs your password and {named}, so a stolen password alone "
            "is not enough.",
            link_name="mfa:overview",
            link_label="Two-step sign-in",
        )
    return CheckupItem(
        ok=False,
        title="Turn on two-step sign-in",
        advice="Right now anyone who learns your password can sign in as you. Add an "
        "authenticator app or a security key, so a password alone is not enough.",
        link_name="mfa:overview",
        link_label="Set up two-step sign-in",
    )


def _codes_to_do(factors: FactorSummary) -> CheckupItem | None:
    """The to-do item when the recovery codes need action, else None."""
    codes = factors.codes
    if codes is None:
        return _codes_item(
            "Make recovery codes",
            "If you lose your phone or security key, a recovery code gets you back in without "
            "waiting for anyone. You need a saved set before you add a second factor.",
            label="Make recovery codes",
        )
    if codes.running_low:
        title = f"Only {_plural(codes.unused, 'recovery code')} left"
        if codes.unused == 0:
            title = "All your recovery codes are used"
        return _codes_item(
            title,
            "Make a new set and keep it somewhere safe: it replaces the old one.",
            label="Make a new set",
        )
    if not codes.confirmed:
        return _codes_item(
            "Confirm you saved your recovery codes",
            "Enter one of them back to show they are kept somewhere safe; it is not spent.",
            label="Confirm your codes",
            link_name="recovery_codes:confirm",
        )
    return None


def _codes_item(
    title: str, advice: str, *, label: str, link_name: str = "recovery_codes:manage"
) -> CheckupItem:
    return CheckupItem(ok=False, title=title, advice=advice, link_name=link_name, link_label=label)


def recovery_codes_check(user: User) -> CheckupItem:
    """NIST N2: a saved code is the way back in; a used one is replaced with a new set.

    A to-do when there is no set, when two or fewer codes are left (that comes first: the new
    set is what is needed), or when the set was never confirmed as saved.
    """
    factors = factor_summary(user=user)
    if (to_do := _codes_to_do(factors)) is not None:
        return to_do
    assert factors.codes is not None  # _codes_to_do returns a to-do when there is no set
    return CheckupItem(
        ok=True,
        title=f"{factors.codes.unused} of {factors.codes.total} recovery codes unused",
        advice="Kept somewhere safe, they get you back in if you lose your other factors.",
        link_name="recovery_codes:manage",
        link_label="Recovery codes",
    )


def phishing_resistant_check(user: User) -> CheckupItem | None:
    """NIST N32: Relatch must offer a phishing-resistant factor; the user need not own one.

    Never a to-do: many people have no security key, and an item that stays open until they buy
    one teaches them to ignore the check-up. With only an app it is listed among the
    protections with a gentle suggestion; with no second factor the two-step item says it all.
    """
    factors = factor_summary(user=user)
    if factors.phishing_resistant:
        return CheckupItem(
            ok=True,
            title="A security key guards your sign-in against phishing",
            advice="A key answers only the real Relatch site, so a look-alike page cannot "
            "capture a sign-in with it.",
            link_name="webauthn:list",
            link_label="Security keys",
        )
    if not factors.has_second_factor:
        return None
    return CheckupItem(
        ok=True,
        title="Your authenticator app guards your sign-in; a security key would also stop "
        "phishing",
        advice="A fake site can trick anyone into typing an app code, but not into using a "
        "security key. If you have one, or a phone or computer that can keep a passkey, "
        "consider adding it too. This is optional.",
        link_name="webauthn:add",
        link_label="Add a security key",
    )


CHECKS: tuple[Callable[[User], CheckupItem | None], ...] = (
    primary_address_check,
    second_address_check,
    password_check,
    failed_signins_check,
    sessions_check,
    two_step_check,
    recovery_codes_check,
    phishing_resistant_check,
)


def security_checkup(*, user: User) -> list[CheckupItem]:
    """Every check's item for ``user``, those that need action first (otherwise in order)."""
    items = [item for check in CHECKS if (item := check(user)) is not None]
    return sorted(items, key=lambda item: item.ok)
