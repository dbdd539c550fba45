"""Password reset by email (OWASP Forgot Password cheat sheet, ASVS 6.3.8, 6.4.3).

The token is Django's: an HMAC over the user's id, password hash and last sign-in time, so it
dies when the password changes (single use) or the user signs in, and expires after
``PASSWORD_RESET_TIMEOUT``. It is made when the mail is delivered, never stored (FP4).
A reset sets the password and ends every session; it never signs anyone in (FP9) and turns
nothing else off, so a second factor still stands between the mailbox and the account (6.4.3).
"""

from django.conf import settings
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.db import transaction
from django.http import HttpRequest
from django.tasks import task
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode

from relatch.accounts import ratelimit
from relatch.accounts.models import Email, User
from relatch.accounts.notices import announce_to_account
from relatch.accounts.passwords.throttling import forget_failures
from relatch.accounts.sessions.services import delete_other_sessions
from relatch.accounts.signin.backends import find_user
from relatch.audit.models import EventKind, Factor
from relatch.audit.services import record_event
from relatch.notify.services import send_mail
from relatch.web.client import client_ip, client_user_agent
from relatch.web.path_prefix import site_url

# Per account: enough for a lost mail or two, too few to flood an inbox (FP3). Silent when
# exceeded, and never a lock: the account and its sign-in are untouched (FP11).
ACCOUNT_LIMIT = "3/hour"
# Per IP, counted for every request: stops one machine walking a list of addresses.
IP_LIMIT = "20/hour"
_MAX_UID_LENGTH = 16
_MAX_TOKEN_LENGTH = 64
_MAX_PK = 2**63 - 1


class ResetTokenGenerator(PasswordResetTokenGenerator):
    # Its own salt: a token made for another purpose with the same key never passes here.
    key_salt = "relatch.accounts.passwords.reset"


reset_tokens = ResetTokenGenerator()


def reset_link(*, user_id: int) -> str:
    """Mail link builder: the reset URL with a token made now (at delivery)."""
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        return site_url(reverse("passwords:reset"))
    uidb64 = urlsafe_base64_encode(force_bytes(user.pk))
    path = reverse("passwords:reset_link", args=[uidb64, reset_tokens.make_token(user)])
    return site_url(path)


def user_for_token(*, uidb64: str, token: str) -> User | None:
    """The account a reset link is for, when its token is valid now; else None."""
    if len(uidb64) > _MAX_UID_LENGTH or len(token) > _MAX_TOKEN_LENGTH:
        return None
    try:
        pk = int(urlsafe_base64_decode(uidb64).decode())
    except (ValueError, UnicodeDecodeError):
        return None
    if not 0 < pk <= _MAX_PK:
        return None
    user = User.objects.filter(pk=pk).first()
    if user is None or not reset_tokens.check_token(user, token):
        return None
    return user


@transaction.atomic
def request_password_reset(*, request: HttpRequest, identifier: str) -> None:
    """Queue the check-and-mail work for ``identifier``; the worker mails a reset link when it
    names an active account with a verified address.

    Returns nothing on purpose: the page must look the same either way (FP1, ASVS 6.3.8). And
    it must take the same time: looking the account up, queueing a mail and recording an event
    took measurably longer for an existing account than for an unknown one (about 1.5 ms of
    3, found by tests/accounts/test_reset_timing.py), so the request now does the same work for
    both (one rate-limit count, one queued task) and the lookup happens in the background.
    """
    if not ratelimit.hit(scope="reset-ip", key=client_ip(request) or "unknown", limit=IP_LIMIT):
        return
    send_reset_link.enqueue(identifier=identifier, ip=client_ip(request),
                            user_agent=client_user_agent(request))


@task()
def send_reset_link(*, identifier: str, ip: str | None, user_agent: str) -> str:
    """Background half of a reset request: find the account, mail the link, record it."""
    user = find_user(identifier)
    if user is None or not user.is_active:
        return "no such account"
    address = reset_address(user=user, identifier=identifier)
    if address is None:
        return "no verified address"
    if not ratelimit.hit(scope="reset-account", key=str(user.pk), limit=ACCOUNT_LIMIT):
        return "account limit"
    with transaction.atomic():
        send_mail(
            to=[address],
            template="password_reset",
            context={"username": user.username,
                     "minutes": settings.PASSWORD_RESET_TIMEOUT // 60},
            link_builder="relatch.accounts.passwords.reset.reset_link",
            link_args={"user_id": user.pk},
        )
        record_event(
            user=user,
            kind=EventKind.PASSWORD_RESET_REQUESTED,
            request=_as_requested(ip=ip, user_agent=user_agent),
            details={"sent_to": address},
        )
    return "sent"


def _as_requested(*, ip: str | None, user_agent: str) -> HttpRequest:
    """The reset request as the audit trail reads it (address and user agent), for the event
    recorded in the background. The address is the one client_ip already resolved, so no
    proxy hops are configured here."""
    replay = HttpRequest()
    replay.META = {"REMOTE_ADDR": ip or "", "HTTP_USER_AGENT": user_agent}
    return replay


def reset_address(*, user: User, identifier: str) -> str | None:
    """Where the link goes: the address typed, if it is verified on the account; for a
    username, the primary verified address. Never an unverified address: whoever typed it in
    may not own it; nor one whose mail bounces (its mailbox may be someone else's by now)."""
    verified = Email.objects.filter(user=user, verified=True, not_receiving_since__isnull=True)
    if "@" in identifier:
        chosen = verified.filter(address__iexact=identifier.strip()).first()
    else:
        chosen = verified.order_by("-primary", "created_at").first()
    return chosen.address if chosen else None


@transaction.atomic
def reset_password(*, request: HttpRequest, user: User, new_password: str) -> int:
    """Set the new password from a valid link: end every session (FP10), forget failed
    sign-ins, record and announce it (FP8). Signs no one in (FP9). Returns sessions ended."""
    user.set_password(new_password)
    user.save(update_fields=["password"])
    forget_failures(user=user)
    ended = delete_other_sessions(user=user, keep_digest=None)
    record_event(
        user=user,
        kind=EventKind.PASSWORD_RESET,
        request=request,
        factor=Factor.EMAIL_LINK,
        details={"sessions_ended": ended},
    )
    announce_to_account(
        user=user, template="password_reset_done", context={"sessions_ended": ended}
    )
    return ended
