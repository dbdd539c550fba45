"""The security check-up on the account page: what protects the account, what to do next.

Each check looks at one thing and returns one item, or None when it has nothing to say. The
checks here look at what accounts knows (addresses, password, sign-ins, sessions); an app that
builds on accounts adds its own with ``add_checks`` when it starts (the factors' app does, in
its ``ready``), so accounts imports none of them.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import Q
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from relatch.accounts.models import User
from relatch.accounts.sessions.queries import session_count
from relatch.audit.models import EventKind, SecurityEvent
from relatch.notify.queries import undelivered_security_mail
from relatch.web.templatetags.times import calendar_date


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


def plural(count: int, noun: str) -> str:
    """ "1 browser", "2 browsers": a count and its noun, for an item's title."""
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


def not_receiving_check(user: User) -> CheckupItem | None:
    """A verified address whose mail bounced hears nothing until it is verified again."""
    bounced = user.emails.filter(verified=True, not_receiving_since__isnull=False).first()
    if bounced is None:
        return None
    return CheckupItem(
        ok=False,
        title=f"Mail to {bounced.address} bounced",
        advice="We send that address no security mail: no notices, no password reset links. "
        "Verify it again once it works, or remove it and add one that does.",
        link_name="emails:manage",
        link_label="Manage addresses",
    )


def undelivered_mail_check(user: User) -> CheckupItem | None:
    """Security mail to a verified address that our mail server could not deliver for days
    (notify gave it up): the owner may be waiting for a link or code, or missed a notice."""
    addresses = {e.address: e.verified_at for e in user.emails.filter(verified=True)}
    lost = undelivered_security_mail(addresses=addresses)
    if not lost:
        return None
    # The day as the pages show it (a <time>, exact UTC on hover); subjects and addresses
    # are escaped by format_html.
    shown = format_html_join(
        "; ", "\u201c{}\u201d to {} ({})",
        ((m.subject, m.to, calendar_date(m.created_at)) for m in lost[:3]),
    )
    more = f" and {len(lost) - 3} more" if len(lost) > 3 else ""
    return CheckupItem(
        ok=False,
        title=f"We could not send you {plural(len(lost), 'security message')}",
        advice=format_html(
            "Our mail server could not deliver {}{}, so we stopped trying. If you were waiting "
            "for a link or a code, ask for a new one; your security history shows what the "
            "notices were about.", shown, more,
        ),
        link_name="account:history",
        link_label="Security history",
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
        title=f"{plural(failed, 'failed sign-in')} since your previous sign-in",
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
        title=f"{plural(count, 'browser')} are signed in to your account",
        advice="Review your sessions and end any you don't recognise.",
        link_name="sessions:list",
        link_label="Review sessions",
    )


def untrusted_address_check(user: User) -> CheckupItem | None:
    """An address Relatch unverified (its domain lapsed or was registered again): with no
    verified address left, the account is asked for a new one before anything else."""
    untrusted = user.emails.filter(verified=False, unverified_at__isnull=False).first()
    if untrusted is None:
        return None
    why = untrusted.unverified_reason or "it may no longer be yours"
    if not user.emails.filter(verified=True).exists():
        return CheckupItem(
            ok=False,
            title="Add an email address now: Relatch no longer trusts yours",
            advice=f"Relatch no longer trusts {untrusted.address}: {why}. Until you add and "
            "verify an address you control, no password reset link, new-device confirmation "
            "or security notice can reach you. Verify it again only if it is still yours.",
            link_name="emails:manage",
            link_label="Add an address",
        )
    return CheckupItem(
        ok=False,
        title=f"Relatch no longer trusts {untrusted.address}",
        advice=f"{why[:1].upper()}{why[1:]}. Verify it again if it is still yours, or "
        "remove it.",
        link_name="emails:manage",
        link_label="Manage addresses",
    )


type Check = Callable[[User], CheckupItem | None]

CHECKS: list[Check] = [
    untrusted_address_check,
    primary_address_check,
    not_receiving_check,
    undelivered_mail_check,
    second_address_check,
    password_check,
    failed_signins_check,
    sessions_check,
]


def add_checks(*checks: Check) -> None:
    """Add ``checks`` after those already listed, each once (``ready`` may run more than once)."""
    CHECKS.extend(check for check in checks if check not in CHECKS)


def security_checkup(*, user: User) -> list[CheckupItem]:
    """Every check's item for ``user``, those that need action first (otherwise in order)."""
    items = [item for check in CHECKS if (item := check(user)) is not None]
    return sorted(items, key=lambda item: item.ok)
