"""Changes to an account's email addresses: add, verify, resend, make primary, remove, replace.

Every change is recorded as a SecurityEvent and announced to every verified address of the
account (NIST N9, ASVS 6.3.7). An account with no verified address can only verify or replace
what it has, so a typo at sign-up is fixed by its owner and never by staff.
"""

from django.conf import settings
from django.contrib.auth.base_user import BaseUserManager
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from relatch.accounts import ratelimit
from relatch.accounts.emails import tokens
from relatch.accounts.emails.middleware import has_verified_email, trust_taken_back
from relatch.accounts.emails.trust import trust_again
from relatch.accounts.freeze import AccountFrozenError, refuse_if_frozen
from relatch.accounts.models import Email, User
from relatch.accounts.notices import announce_to_account, verified_addresses
from relatch.accounts.registration.policy import SignupRefusedError, refuse_first_address
from relatch.audit.models import EventKind
from relatch.audit.services import record_event
from relatch.notify.services import send_mail
from relatch.web.refusals import Refusal

MAX_EMAILS_PER_ACCOUNT = 10
MAX_ADDRESS_LENGTH = 254
# Verification mails go to addresses nobody has proven yet; these limits stop an account (or a
# stolen session) from turning Relatch into a mail cannon aimed at someone else's inbox.
RESEND_LIMIT = "3/hour"  # per address
NEW_ADDRESS_LIMIT = "10/hour"  # per account, adds and replacements together
VERIFICATION_LINK_BUILDER = "relatch.accounts.emails.tokens.verification_link"


class EmailChangeError(Refusal):
    """A change that the rules forbid; ``message`` says why, plainly. Nothing was changed."""

    status = 400


class EmailRateLimitError(EmailChangeError):
    """Refused because a rate limit is used up."""

    status = 429


class VerificationError(EmailChangeError):
    """A verification link that cannot be used; ``code`` names the reason for tests and logs."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class FrozenAccountError(EmailChangeError):
    """Refused because the account is frozen (relatch.accounts.freeze). Nothing changed."""

    status = 403


class FrozenVerificationError(VerificationError):
    """A verification link of a frozen account: refused until staff unfreeze it."""

    status = 403


def normalize_address(address: str) -> str:
    """The address as stored: trimmed, domain in lower case; refuses a malformed one."""
    address = BaseUserManager.normalize_email(address.strip())
    if len(address) > MAX_ADDRESS_LENGTH:
        raise EmailChangeError(f"An email address has at most {MAX_ADDRESS_LENGTH} characters.")
    try:
        validate_email(address)
    except ValidationError as exc:
        raise EmailChangeError("Enter a valid email address.") from exc
    return address


def queue_verification_mail(*, email: Email, template: str = "email_verify") -> None:
    """Queue the mail with the verification link; the token is made at delivery."""
    send_mail(
        to=[email.address],
        template=template,
        context={
            "username": email.user.username,
            "address": email.address,
            "max_age_hours": _max_age_hours(),
        },
        link_builder=VERIFICATION_LINK_BUILDER,
        link_args={"email_id": email.pk},
    )


def _max_age_hours() -> int:
    return max(1, settings.EMAIL_VERIFICATION_MAX_AGE // 3600)


def _lock(user: User) -> None:
    """Serialize changes to one account's addresses, so two submits of a form cannot both
    pass a check (the address limit, "not the last verified one") that only one may pass."""
    User.objects.select_for_update().filter(pk=user.pk).first()


def _own_email(user: User, email_id: int) -> Email:
    email = Email.objects.filter(user=user, pk=email_id).first()
    if email is None:
        raise EmailChangeError("That address is not on your account (it may have been removed).")
    return email


def _refuse_if_frozen(user: User, action: str) -> None:
    """While the account is frozen its addresses stay as they are: a hijacker holding a
    session cannot add an address of theirs, promote it, or remove the owner's (DESIGN §5)."""
    try:
        refuse_if_frozen(user=user, action=action)
    except AccountFrozenError as frozen:
        raise FrozenAccountError(frozen.message) from frozen


def _require_verified_account(user: User) -> None:
    if not has_verified_email(user):
        raise EmailChangeError(
            "Verify your address first, or replace it if it is mistyped. Until one address is "
            "verified, nothing else can change."
        )


def _count_new_address(user: User) -> None:
    if not ratelimit.hit(scope="email-new-address", key=str(user.pk), limit=NEW_ADDRESS_LIMIT):
        raise EmailRateLimitError(
            "You have added or replaced too many addresses in the last hour. Try again later."
        )


@transaction.atomic
def add_email(*, request: HttpRequest | None, user: User, address: str) -> Email:
    """Add an unverified address and mail it a verification link; tell the verified ones.

    An address verified on another account may be added here too: saying it is taken would
    reveal whose it is, and its verification link will be refused anyway.
    """
    _lock(user)
    _refuse_if_frozen(user, "Adding an email address")
    if not trust_taken_back(user):  # Relatch unverified them all: it needs a new one now
        _require_verified_account(user)
    address = normalize_address(address)
    if user.emails.count() >= MAX_EMAILS_PER_ACCOUNT:
        raise EmailChangeError(
            f"An account has at most {MAX_EMAILS_PER_ACCOUNT} addresses. Remove one first."
        )
    if user.emails.filter(address__iexact=address).exists():
        raise EmailChangeError("This address is already on your account.")
    _count_new_address(user)
    try:
        with transaction.atomic():
            email = Email.objects.create(user=user, address=address)
    except IntegrityError as exc:  # the same form sent twice at once
        raise EmailChangeError("This address is already on your account.") from exc
    record_event(
        user=user, kind=EventKind.EMAIL_ADDED, request=request, details={"address": address}
    )
    queue_verification_mail(email=email)
    announce_to_account(user=user, template="email_added", context={"address": address})
    return email


def _claimed_email(token: str, *, lock: bool) -> Email:
    """The row a verification token may verify, or VerificationError saying why not."""
    try:
        claim = tokens.read_verification_token(token)
    except tokens.ExpiredTokenError as exc:
        raise VerificationError(
            "expired", "This link has expired. Sign in and send a new one from your address page."
        ) from exc
    except tokens.ForgedTokenError as exc:
        raise VerificationError(
            "forged", "This link is not valid. Check that you copied all of it from the mail."
        ) from exc
    rows = Email.objects.select_for_update() if lock else Email.objects.all()
    email = rows.select_related("user").filter(pk=claim.email_id).first()
    if email is None:
        raise VerificationError(
            "removed", "This address was removed from its account, so the link no longer works."
        )
    # A verified address is verified again only when its mail bounced (it receives mail once
    # more); the bounce's time is in the token, so such a link works once too.
    if email.verified and email.not_receiving_since is None:
        raise VerificationError("used", "This link was already used: the address is verified.")
    if not constant_time_compare(claim.state, tokens.email_state(email)):
        raise VerificationError(
            "changed", "This address was changed after the link was sent. Use the newest mail."
        )
    _refuse_if_verified_elsewhere(email)
    return email


def _refuse_if_verified_elsewhere(email: Email) -> None:
    # Only the mailbox's owner can get here, so naming the conflict reveals nothing new.
    taken = Email.objects.filter(address__iexact=email.address, verified=True)
    if taken.exclude(pk=email.pk).exists():
        raise VerificationError(
            "taken",
            "This address is already verified on another Relatch account, and an address "
            "belongs to one account only. Use another address.",
        )


def preview_verification(*, token: str) -> Email:
    """The address a link would verify, for the confirm page (GET changes nothing)."""
    return _claimed_email(token, lock=False)


@transaction.atomic
def verify_email(*, request: HttpRequest | None, token: str) -> Email:
    """Verify the address named by ``token``; the first verified address becomes primary.

    Works signed in or not: the token, which only the mailbox received, is the proof.
    """
    # Account first, then the row (the order every service locks in), then check again under
    # the lock: of two clicks on one link, exactly one verifies.
    user = _claimed_email(token, lock=False).user
    _lock(user)
    try:
        # A link mailed to a hijacker's address before the freeze must not verify it now.
        refuse_if_frozen(user=user, action="Verifying an email address")
    except AccountFrozenError as frozen:
        raise FrozenVerificationError("frozen", frozen.message) from frozen
    email = _claimed_email(token, lock=True)
    if others := verified_addresses(user):  # read before this one joins them
        announce_to_account(
            user=user,
            template="email_verified",
            context={"address": email.address, "others": len(others)},
        )
    if not user.emails.filter(primary=True, verified=True).exists():
        user.emails.filter(primary=True).exclude(pk=email.pk).update(primary=False)
        email.primary = True
    email.verified, email.verified_at = True, timezone.now()
    try:
        with transaction.atomic():
            email.save(update_fields=["verified", "verified_at", "primary"])
    except IntegrityError as exc:  # verified on another account a moment ago
        raise VerificationError(
            "taken",
            "This address is already verified on another Relatch account. Use another address.",
        ) from exc
    trust_again(email=email)  # it is its owner's, and it receives mail: both shown anew
    record_event(
        user=user,
        kind=EventKind.EMAIL_VERIFIED,
        request=request,
        details={"address": email.address, "primary": email.primary},
    )
    return email


@transaction.atomic
def resend_verification(*, request: HttpRequest | None, user: User, email_id: int) -> Email:
    """Mail a fresh verification link, at most RESEND_LIMIT per address: to an unverified
    address, or to a verified one whose mail bounced (verifying it again shows it works)."""
    email = _own_email(user, email_id)
    if email.verified and email.not_receiving_since is None:
        raise EmailChangeError("This address is already verified.")
    if not ratelimit.hit(scope="email-resend", key=email.address.lower(), limit=RESEND_LIMIT):
        raise EmailRateLimitError(
            f"We already sent {email.address} several links in the last hour. Check its spam "
            "folder, or wait an hour and ask again."
        )
    queue_verification_mail(email=email)
    record_event(
        user=user,
        kind=EventKind.EMAIL_VERIFICATION_SENT,
        request=request,
        details={"address": email.address},
    )
    return email


@transaction.atomic
def make_primary(*, request: HttpRequest | None, user: User, email_id: int) -> Email:
    """Make a verified address the primary one."""
    _lock(user)
    _refuse_if_frozen(user, "Changing the primary email address")
    email = _own_email(user, email_id)
    if not email.verified:
        raise EmailChangeError("Verify this address before making it primary.")
    if email.primary:
        raise EmailChangeError("This address is already your primary address.")
    old = user.emails.filter(primary=True).first()
    user.emails.filter(primary=True).update(primary=False)
    email.primary = True
    email.save(update_fields=["primary"])
    previous = old.address if old else ""
    record_event(
        user=user,
        kind=EventKind.EMAIL_PRIMARY_CHANGED,
        request=request,
        details={"old": previous, "new": email.address},
    )
    announce_to_account(
        user=user,
        template="email_primary_changed",
        context={"address": email.address, "previous": previous},
    )
    return email


@transaction.atomic
def remove_email(*, request: HttpRequest | None, user: User, email_id: int) -> str:
    """Remove an address, never the last verified one; returns the removed address.

    Removing the primary address makes the longest-verified remaining one primary. The removed
    address hears about it too: if a thief removed it, its owner must find out.
    """
    _lock(user)
    _refuse_if_frozen(user, "Removing an email address")
    _require_verified_account(user)
    email = _own_email(user, email_id)
    other_verified = user.emails.filter(verified=True).exclude(pk=email.pk)
    if email.verified and not other_verified.exists():
        raise EmailChangeError(
            "This is your only verified address, and an account keeps at least one. Add and "
            "verify another address first."
        )
    successor = other_verified.order_by("verified_at", "pk").first() if email.primary else None
    email.delete()
    if successor is not None:
        successor.primary = True
        successor.save(update_fields=["primary"])
    new_primary = successor.address if successor else ""
    record_event(
        user=user,
        kind=EventKind.EMAIL_REMOVED,
        request=request,
        details={"address": email.address, "new_primary": new_primary},
    )
    announce_to_account(
        user=user,
        template="email_removed",
        context={"address": email.address, "new_primary": new_primary},
        also_to=[email.address] if email.verified else [],
    )
    return email.address


def _refuse_outside_signup_domains(address: str) -> None:
    # RELATCH_SIGNUP=domains: the first verified address must be at the team's domains, or a
    # stranger would register as someone@example.org and then verify an address of their own.
    try:
        refuse_first_address(address)
    except SignupRefusedError as refusal:
        raise EmailChangeError(refusal.message) from None


@transaction.atomic
def replace_unverified_email(
    *, request: HttpRequest | None, user: User, email_id: int, new_address: str
) -> Email:
    """Fix a mistyped address: an account with no verified address swaps it for another.

    The row keeps its place (primary) and gets the new address, which kills every link sent
    to the old one. Accounts with a verified address add and remove instead.
    """
    _lock(user)
    _refuse_if_frozen(user, "Replacing an email address")
    if has_verified_email(user):
        raise EmailChangeError(
            "Your account has a verified address: add the new address and remove the old one."
        )
    email = _own_email(user, email_id)
    new_address = normalize_address(new_address)
    _refuse_outside_signup_domains(new_address)
    if new_address.lower() == email.address.lower():
        raise EmailChangeError("That is the address you have now. Check it for a typo.")
    if user.emails.filter(address__iexact=new_address).exists():
        raise EmailChangeError("This address is already on your account.")
    _count_new_address(user)
    old_address, email.address = email.address, new_address
    try:
        with transaction.atomic():
            email.save(update_fields=["address"])
    except IntegrityError as exc:
        raise EmailChangeError("This address is already on your account.") from exc
    record_event(
        user=user,
        kind=EventKind.EMAIL_REPLACED,
        request=request,
        details={"old": old_address, "new": new_address},
    )
    queue_verification_mail(email=email)
    # Nobody verified hears this today (the account has no verified address); announcing keeps
    # the rule "every change is announced" true should that ever change.
    announce_to_account(
        user=user,
        template="email_replaced",
        context={"address": new_address, "previous": old_address},
    )
    return email
