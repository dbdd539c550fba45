"""A recovery request made from the second step of a sign-in: "I can't use any of these".

The password was right in this browser a moment ago, so the request starts with it counted
(the source rules of ``relatch.recovery.sources`` judge it: a password reset by mail counts as
the mailbox, not as knowledge), and a code mailed to the account asks for the mailbox. The
requester types neither again.

Like every request it is filed only once its contact address is confirmed with the mailed
code, and only then does anyone else hear of it. When the contact address is a verified
address of the account, that one code may also satisfy the mailbox proof, on the proof's own
terms: one code (a new one ends this), at most CODE_ATTEMPTS tries (the contact code's limit),
entered within the proof code's lifetime. One code, one mailbox, one proof: one source.
"""

import secrets
from datetime import datetime

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from relatch.accounts.models import Email, User
from relatch.recovery import workflow
from relatch.recovery.models import ProofKind, RecoveryProof, RecoveryRequest, State
from relatch.recovery.proofs.evidence import mask_address, verified_account_emails
from relatch.recovery.proofs.outcomes import after_proof, settle
from relatch.recovery.proofs.services import (
    CODE_LIFETIME,
    ProofError,
    request_proof,
    send_account_email_code,
)
from relatch.recovery.requester import services
from relatch.recovery.requester.routing import StillHas
from relatch.signin.newdevice.partial import end_partial_signin

Status = RecoveryProof.Status
# Evidence keys: when the sign-in found the password right; that the contact code is the code.
AT_SIGNIN = "password_checked_at_signin"
BY_CONTACT_CODE = "answered_by_contact_code"
_ALSO_HAS = frozenset(StillHas.values) - {StillHas.PASSWORD, StillHas.EMAIL}


def contact_choices(user: User) -> list[Email]:
    """The account's addresses a contact code (and a mailbox proof) may go to."""
    return verified_account_emails(user)


def masked_choices(user: User) -> list[tuple[int, str]]:
    return [(email.pk, mask_address(email.address)) for email in contact_choices(user)]


@transaction.atomic
def start_from_signin(
    *,
    request: HttpRequest,
    user: User,
    password_checked_at: datetime,
    account_email: Email | None,
    other_address: str,
    still_has: list[str],
    description: str,
    agreed: bool,
    acknowledged: bool,
) -> RecoveryRequest:
    """Make an unfiled request for ``user`` carrying the password proof (checked by the
    sign-in at ``password_checked_at``), mail the contact code to ``account_email`` (an
    address of the account: the code may then prove that mailbox too) or ``other_address``,
    and end this browser's partial sign-in. Raises RequesterError."""
    if not (agreed and acknowledged):
        raise services.RequesterError(
            "Agree to the code of conduct and acknowledge that review takes time.")
    if not set(still_has) <= _ALSO_HAS:
        raise services.RequesterError("Choose what else you still have from the list.")
    if account_email is not None and account_email not in contact_choices(user):
        raise services.RequesterError("Choose one of the account's addresses, or type another.")
    contact = account_email.address if account_email is not None else other_address
    if not contact:
        raise services.RequesterError("Choose one of the account's addresses, or type another.")
    services.check_limits(request, contact)
    recovery = _new_request(user, contact, still_has, description)
    _password_proof(recovery, password_checked_at)
    if account_email is not None:
        _code_proof(recovery, account_email)
    services.mail_code(recovery)
    end_partial_signin(request)
    return recovery


def _new_request(user: User, contact: str, still_has: list[str],
                 description: str) -> RecoveryRequest:
    return RecoveryRequest.objects.create(
        public_id=secrets.token_urlsafe(12), link_nonce=secrets.token_hex(16),
        username_claimed=user.username, user=user, contact_email=contact,
        still_has=list(dict.fromkeys(still_has)), description=description,
        agreed_to_code_of_conduct=True, acknowledged_review_time=True,
    )


def _password_proof(recovery: RecoveryRequest, checked_at: datetime) -> RecoveryProof:
    # Satisfied by the sign-in's own check; announced when the request is filed (until then
    # nobody hears of an unfiled request, and housekeeping deletes it with its proofs).
    return RecoveryProof.objects.create(
        request=recovery, kind=ProofKind.PASSWORD, status=Status.SATISFIED,
        checked_at=checked_at,
        evidence={AT_SIGNIN: checked_at.isoformat(), "last_result": "password right at sign-in"},
    )


def _code_proof(recovery: RecoveryRequest, email: Email) -> RecoveryProof:
    # ``expires_at``: until when the contact code may also count as this proof's code.
    return RecoveryProof.objects.create(
        request=recovery, kind=ProofKind.ACCOUNT_EMAIL,
        expires_at=timezone.now() + CODE_LIFETIME,
        evidence={BY_CONTACT_CODE: True, "address_id": email.pk,
                  "sent_to": mask_address(email.address), "codes_sent": 1},
    )


def proves_mailbox(recovery: RecoveryRequest) -> bool:
    """Whether the contact code of this unfiled request may also prove the account's
    mailbox (the confirm page says so)."""
    return recovery.proofs.filter(kind=ProofKind.ACCOUNT_EMAIL, status=Status.PENDING,
                                  expires_at__gt=timezone.now()).exists()


@transaction.atomic
def take_signin_proofs(*, recovery: RecoveryRequest) -> bool:
    """At filing (in the worker): announce the password proof, settle or mail the mailbox
    proof, then let the request move on once. False for a request not made at a sign-in."""
    password = recovery.proofs.filter(kind=ProofKind.PASSWORD, status=Status.SATISFIED,
                                      evidence__has_key=AT_SIGNIN).first()
    if password is None or recovery.user is None:
        return False
    settle(password, Status.SATISFIED, result="password right at the sign-in step")
    linked = recovery.proofs.filter(kind=ProofKind.ACCOUNT_EMAIL, status=Status.PENDING,
                                    evidence__has_key=BY_CONTACT_CODE).first()
    if linked is not None and _answered_in_time(recovery, linked):
        settle(linked, Status.SATISFIED, result="the contact code reached this address")
    _open_to_proofs(recovery)
    if linked is None or linked.status == Status.PENDING:
        _mail_proof_code(recovery, linked)
    after_proof(recovery=recovery)
    return True


def _answered_in_time(recovery: RecoveryRequest, proof: RecoveryProof) -> bool:
    recovery.refresh_from_db()
    email = Email.objects.filter(pk=proof.evidence.get("address_id") or 0).first()
    confirmed, deadline = recovery.contact_confirmed_at, proof.expires_at
    return (email is not None and email.address.lower() == recovery.contact_email.lower()
            and confirmed is not None and deadline is not None and confirmed <= deadline)


def _open_to_proofs(recovery: RecoveryRequest) -> None:
    recovery.refresh_from_db()
    if recovery.state == State.SUBMITTED:
        workflow.move(recovery=recovery, to=State.AWAITING_PROOF, actor=workflow.Actor.SYSTEM,
                      reason="Made at a sign-in whose password was right; a code was mailed "
                             "to the account.")


def _mail_proof_code(recovery: RecoveryRequest, linked: RecoveryProof | None) -> None:
    """A fresh code for the mailbox proof: to the linked address, else the account's first."""
    assert recovery.user is not None
    addresses = contact_choices(recovery.user)
    target = next((e for e in addresses if linked and e.pk == linked.evidence.get("address_id")),
                  addresses[0] if addresses else None)
    if target is None:
        return  # no address left that a code could reach: staff ask for another proof
    try:
        proof = linked or request_proof(recovery=recovery, kind=ProofKind.ACCOUNT_EMAIL,
                                        staff=None)
        if linked is not None:
            _restart_linked(linked)
        send_account_email_code(proof=proof, address=target.address)
    except ProofError:
        return  # closed meanwhile, or asked already: the status page shows what stands


def _restart_linked(proof: RecoveryProof) -> None:
    # The contact code did not count: from here it is an ordinary proof with its own codes.
    proof.evidence = {key: value for key, value in proof.evidence.items()
                      if key not in (BY_CONTACT_CODE, "codes_sent")}
    proof.expires_at = None
    proof.save(update_fields=["evidence", "expires_at"])
