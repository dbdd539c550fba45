"""The requester's side of a recovery request: start it, confirm the contact address with a
code (which files it), follow it, message staff, cancel or reopen it; and the account owner's
"this wasn't me" (DESIGN §5).

Nothing here tells the requester whether the username exists (ASVS 6.3.8, OWASP FP1): an
unknown name makes the same row, the same page and the same mails; a blocked account's request
is filed and quietly cancelled.
"""

import secrets
from datetime import timedelta

from django.db import transaction
from django.http import HttpRequest
from django.tasks import task
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from relatch.accounts import ratelimit
from relatch.accounts.models import Email, User
from relatch.accounts.notices import verified_addresses
from relatch.audit.models import EventKind
from relatch.audit.services import record_event
from relatch.notify.services import send_mail
from relatch.recovery import workflow
from relatch.recovery.models import (
    ProofKind,
    RecoveryMessage,
    RecoveryProof,
    RecoveryRequest,
    RecoveryTransition,
    State,
)
from relatch.recovery.requester import links
from relatch.recovery.requester.routing import StillHas
from relatch.web.client import client_ip
from relatch.web.path_prefix import site_url
from relatch.web.refusals import Refusal

status_link = links.status_link

# NIST N3: a short code, for a day, a few tries; then a new code is needed.
CODE_VALIDITY = timedelta(hours=24)
CODE_ATTEMPTS = 5
CODE_BUILDER = "relatch.recovery.requester.services.contact_code"
# Per client IP: a person files one or two; a bot walking usernames is stopped.
IP_LIMIT_COUNT = 10
IP_LIMIT = f"{IP_LIMIT_COUNT}/hour"
# Per contact address: stops flooding one inbox with codes (also counts new codes).
CONTACT_LIMIT_COUNT = 5
CONTACT_LIMIT = f"{CONTACT_LIMIT_COUNT}/hour"
# The reason on a request that was filed while the account was blocked ("this wasn't me").
BLOCKED_REASON = "blocked"
MAX_MESSAGE_LENGTH = 5000
# Staff hear of at most this many requester messages per request an hour: a status-link
# holder cannot flood the staff inboxes (the messages themselves are all kept).
STAFF_NOTICE_LIMIT = "6/hour"


class RequesterError(Refusal):
    """Refused; ``message`` says why to the person (``status``: 400 unless given). Nothing
    was changed."""


def _code_digest(recovery: RecoveryRequest, code: str) -> str:
    value = f"{recovery.public_id}:{code}"
    return salted_hmac("relatch.recovery.contact-code", value, algorithm="sha256").hexdigest()


def check_limits(request: HttpRequest, contact_email: str) -> None:
    ip_ok = ratelimit.hit(scope="recovery-ip", key=client_ip(request) or "unknown", limit=IP_LIMIT)
    contact_ok = ratelimit.hit(
        scope="recovery-contact", key=contact_email.lower(), limit=CONTACT_LIMIT
    )
    if not (ip_ok and contact_ok):
        raise RequesterError(
            "Too many recovery requests came from your network or for this contact address in "
            "the last hour. Nothing was sent; try again in an hour.",
            status=429,
        )


@transaction.atomic
def start_request(
    *,
    request: HttpRequest,
    username: str,
    contact_email: str,
    still_has: list[str],
    description: str,
    agreed: bool,
    acknowledged: bool,
) -> RecoveryRequest:
    """Make an unfiled request and mail a 6-digit code to ``contact_email``.

    ``username`` may also be an address verified on the account. The row, the response and
    the mail are the same whether or not it names an account. Raises RequesterError when an
    agreement is missing or a rate limit is used up.
    """
    if not (agreed and acknowledged):
        raise RequesterError("Agree to the code of conduct and acknowledge that review takes time.")
    if not set(still_has) <= set(StillHas.values):
        raise RequesterError("Choose what you still have from the list.")
    check_limits(request, contact_email)
    recovery = RecoveryRequest.objects.create(
        public_id=secrets.token_urlsafe(12),
        link_nonce=secrets.token_hex(16),
        username_claimed=username,
        user=account_named(username),
        contact_email=contact_email,
        still_has=list(dict.fromkeys(still_has)),
        description=description,
        agreed_to_code_of_conduct=True,
        acknowledged_review_time=True,
    )
    mail_code(recovery)
    return recovery


def account_named(name: str) -> User | None:
    """The account ``name`` names: a username, or (with an "@") an address verified on it.
    An unverified address may be anyone's claim, so it names nothing."""
    name = name.strip()
    if "@" not in name:
        return User.objects.filter(username__iexact=name).first()
    email = Email.objects.filter(address__iexact=name, verified=True).select_related("user")
    found = email.first()
    return found.user if found else None


def mail_code(recovery: RecoveryRequest) -> None:
    send_mail(
        to=[recovery.contact_email],
        template="recovery_request_code",
        context={"username": recovery.username_claimed, "hours": _code_hours()},
        link_builder=CODE_BUILDER,
        link_args={"recovery_id": recovery.pk},
    )


def _code_hours() -> int:
    return int(CODE_VALIDITY.total_seconds() // 3600)


def contact_code(*, recovery_id: int) -> str:
    """Mail "link" builder for recovery_request_code: makes the code at delivery, stores its
    digest (never the code) and starts its 24 hours and its attempts afresh."""
    code = f"{secrets.randbelow(10**6):06d}"
    recovery = RecoveryRequest.objects.get(pk=recovery_id)
    RecoveryRequest.objects.filter(pk=recovery_id, contact_confirmed_at__isnull=True).update(
        contact_code_digest=_code_digest(recovery, code),
        contact_code_expires_at=timezone.now() + CODE_VALIDITY,
        contact_code_attempts=0,
    )
    return code


@transaction.atomic
def send_new_code(*, request: HttpRequest, recovery: RecoveryRequest) -> None:
    """Replace the contact code (the old one stops working now); rate-limited like a start."""
    check_limits(request, recovery.contact_email)
    updated = RecoveryRequest.objects.filter(
        pk=recovery.pk, contact_confirmed_at__isnull=True
    ).update(contact_code_digest="", contact_code_expires_at=None)
    if updated:
        # A code mailed to an address of the account proves that mailbox only if it is the
        # one code, tried at most CODE_ATTEMPTS times (relatch.recovery.requester
        # .signin_requests): a new code ends that, or guesses would add up over codes.
        RecoveryProof.objects.filter(request=recovery, kind=ProofKind.ACCOUNT_EMAIL).update(
            expires_at=timezone.now())
        mail_code(recovery)


def code_problem(recovery: RecoveryRequest) -> str:
    """Why the contact code can no longer be entered ("" when it still can)."""
    if recovery.contact_code_attempts >= CODE_ATTEMPTS:
        return "That was too many wrong codes. Ask for a new code."
    expires = recovery.contact_code_expires_at
    if not recovery.contact_code_digest or expires is None or expires <= timezone.now():
        return "This code has expired or was replaced. Ask for a new code."
    return ""


def why_code_refused(recovery: RecoveryRequest) -> str:
    """What the page and the API say when ``confirm_contact`` did not accept a code."""
    return code_problem(recovery) or "That code is wrong."


@transaction.atomic
def confirm_contact(*, recovery: RecoveryRequest, code: str) -> bool:
    """Check the mailed code; on success file the request (once) and return True."""
    # Lock only the request: PostgreSQL cannot lock the nullable side of the join.
    locked = RecoveryRequest.objects.select_for_update(of=("self",)).select_related("user")
    row = locked.get(pk=recovery.pk)
    if row.contact_confirmed_at is not None:
        return True  # a double submit: filed already, nothing more to do
    if code_problem(row):
        return False
    if not constant_time_compare(_code_digest(row, code.strip()), row.contact_code_digest):
        row.contact_code_attempts += 1
        row.save(update_fields=["contact_code_attempts"])
        recovery.refresh_from_db()
        return False
    _file(row)
    recovery.refresh_from_db()
    return True


def _file(row: RecoveryRequest) -> None:
    # The same work whether or not the username named an account, so the time a filing takes
    # does not say which (ASVS 6.3.8): telling the owner (an event and a mail to each of their
    # addresses) took 3 to 6 ms more, found by tests/recovery/test_request_timing.py. So the
    # owner hears, a block holds the request and its proofs are asked for in the worker,
    # queued for every filing.
    now = timezone.now()
    row.contact_confirmed_at = now
    row.contact_code_digest = ""
    row.updated_at = now
    row.save(update_fields=["contact_confirmed_at", "contact_code_digest", "updated_at"])
    send_mail(to=[row.contact_email], template="recovery_request_filed",
              context={"request_id": row.public_id}, link_builder=links.STATUS_LINK_BUILDER,
              link_args={"recovery_id": row.pk})
    announce_filing.enqueue(recovery_id=row.pk)


@task()
def announce_filing(*, recovery_id: int) -> str:
    """Tell the claimed account's owner of a filed request, hold it when the account's
    recovery is blocked (staff see it at the top of the desk), and ask for the proofs that
    match what the requester says they still have (nothing for an unknown username)."""
    from relatch.recovery.proofs.automatic import request_matching_proofs
    from relatch.recovery.requester.signin_requests import take_signin_proofs

    row = RecoveryRequest.objects.select_related("user").get(pk=recovery_id)
    if row.user is None:
        return "no account"
    if refused_quietly(row):
        return "refused quietly"
    with transaction.atomic():
        _announce_filing(row)
        held = _hold_if_blocked(row)
        # First: its proofs settle while the request is still submitted, so it moves once.
        from_signin = take_signin_proofs(recovery=row)
        asked = request_matching_proofs(recovery=row)
    return (f"announced; {'held; ' if held else ''}{'from a sign-in; ' if from_signin else ''}"
            f"{len(asked)} proof(s) asked for")


def _hold_if_blocked(row: RecoveryRequest) -> bool:
    from relatch.recovery.holds import active_block, hold

    if active_block(row.user) is None:  # type: ignore[arg-type]
        return False
    return hold(recovery=row, reason="Filed while the account's recovery is blocked.")


def _announce_filing(row: RecoveryRequest) -> None:
    assert row.user is not None
    record_event(user=row.user, kind=EventKind.RECOVERY_REQUESTED,
                 details={"request": row.public_id})
    # NIST N8/N9: every verified address hears, with a one-click "this wasn't me" link.
    send_mail(to=verified_addresses(row.user), template="recovery_request_notice",
              context={"username": row.user.username, "request_id": row.public_id,
                       "security_notice": True},
              link_builder=links.NOT_ME_LINK_BUILDER, link_args={"recovery_id": row.pk})


def refused_quietly(recovery: RecoveryRequest) -> bool:
    """True for a request cancelled because the account was blocked: shown as submitted."""
    return recovery.state == State.CANCELLED and recovery.transitions.filter(
        to_state=State.CANCELLED, reason=BLOCKED_REASON, actor=RecoveryTransition.Actor.SYSTEM
    ).exists()


@transaction.atomic
def post_message(*, recovery: RecoveryRequest, body: str) -> RecoveryMessage:
    """A message from the requester to staff; it answers whatever staff were waiting for."""
    body = body.strip()
    if not body or len(body) > MAX_MESSAGE_LENGTH:
        raise RequesterError(f"Write a message of 1 to {MAX_MESSAGE_LENGTH} characters.")
    message = RecoveryMessage.objects.create(
        request=recovery, author=RecoveryMessage.Author.REQUESTER, body=body
    )
    RecoveryRequest.objects.filter(pk=recovery.pk).update(
        awaiting_requester_since=None, reminders_sent=0, updated_at=timezone.now()
    )
    _tell_staff_of_message(recovery)
    return message


def desk_url(recovery: RecoveryRequest) -> str:
    """The absolute URL of ``recovery``'s page at the staff desk (no secret: staff sign in)."""
    return site_url(reverse("desk:detail", args=[recovery.public_id]))


def _staff_addresses(recovery: RecoveryRequest) -> tuple[list[str], bool]:
    """The assigned staff member's verified addresses, else every active staff member's;
    and whether they are the assignee's."""
    assignee = recovery.assigned_to
    if assignee is not None and assignee.is_active and assignee.is_staff:
        addresses = verified_addresses(assignee)
        if addresses:
            return addresses, True
    staff = User.objects.filter(is_staff=True, is_active=True)
    return [a for member in staff for a in verified_addresses(member)], False


def _tell_staff_of_message(recovery: RecoveryRequest) -> None:
    addresses, assigned = _staff_addresses(recovery)
    if not addresses or not ratelimit.hit(scope="recovery-staff-notice",
                                          key=recovery.public_id, limit=STAFF_NOTICE_LIMIT):
        return
    # The message itself stays at the desk: a requester's text is not relayed by mail.
    send_mail(to=addresses, template="recovery_desk_new_message",
              context={"request_id": recovery.public_id, "username": recovery.username_claimed,
                       "assigned": assigned, "desk_url": desk_url(recovery)})


@transaction.atomic
def cancel_by_requester(*, recovery: RecoveryRequest) -> None:
    """The requester withdraws the request."""
    if refused_quietly(recovery):
        return  # already closed; the requester must not learn why
    _move(recovery, State.CANCELLED, RecoveryTransition.Actor.REQUESTER, "cancelled by requester")


@transaction.atomic
def reopen(*, recovery: RecoveryRequest) -> None:
    """Reopen a request closed for lack of response; staff see it again."""
    if recovery.state != State.CLOSED_NO_RESPONSE:
        raise RequesterError("Only a request closed for lack of response can be reopened.",
                             status=409)
    _move(recovery, State.AWAITING_PROOF, RecoveryTransition.Actor.REQUESTER, "reopened")
    RecoveryRequest.objects.filter(pk=recovery.pk).update(
        awaiting_requester_since=None, reminders_sent=0
    )
    recovery.refresh_from_db()


def _move(recovery: RecoveryRequest, to: State, actor: RecoveryTransition.Actor,
          reason: str) -> None:
    try:
        workflow.move(recovery=recovery, to=to, actor=actor, reason=reason)
    except workflow.TransitionRefusedError as exc:
        raise RequesterError(exc.message, status=409) from exc
