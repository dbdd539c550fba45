"""Settling a proof and moving its request on (DESIGN §5; NIST N6).

Every outcome is a SecurityEvent on the account; a satisfied or failed proof is announced to
every verified address of the account and to the requester's contact address.
"""

from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from relatch.accounts.notices import announce_to_account, verified_addresses
from relatch.audit.models import EventKind
from relatch.audit.services import record_event
from relatch.mfa.policy import has_second_factor
from relatch.notify.services import send_mail
from relatch.recovery import workflow
from relatch.recovery.holds import active_block, hold
from relatch.recovery.models import ProofKind, RecoveryProof, RecoveryRequest, State
from relatch.recovery.policy import auto_wait, missing_proof, qualifies_for_auto_wait
from relatch.recovery.sources import independent_sources

Status = RecoveryProof.Status
# Proofs are taken only while the request is still open to them; a hold stops the request
# from moving on, not its requester from answering (the owner's own request may be the one
# a hijacker's "this wasn't me" held).
OPEN_STATES = frozenset({State.AWAITING_PROOF, State.IN_WAITING_PERIOD, State.AWAITING_APPROVAL,
                         State.ON_HOLD})


def settle(proof: RecoveryProof, status: str, *, result: str, **evidence: Any) -> None:
    """Record one check of ``proof`` (``result`` says what happened, e.g. "wrong"), then
    let the request move on. Call inside the caller's transaction."""
    now = timezone.now()
    proof.status = status
    proof.checked_at = now
    proof.evidence = {**proof.evidence, **evidence, "last_result": result,
                      "last_checked_at": now.isoformat()}
    proof.save(update_fields=["status", "checked_at", "evidence", "attempts"])
    recovery = proof.request
    if recovery.user is not None:
        record_event(user=recovery.user, kind=EventKind.RECOVERY_PROOF_CHECKED,
                     details={"request": recovery.public_id, "kind": proof.kind,
                              "status": status, "result": result})
    if status in (Status.SATISFIED, Status.FAILED, Status.EXPIRED):
        _announce(proof)
    after_proof(recovery=recovery)


def _announce(proof: RecoveryProof) -> None:
    recovery = proof.request
    context = {"request_id": recovery.public_id, "kind": ProofKind(proof.kind).label,
               "status": Status(proof.status).label}
    addresses: set[str] = set()
    if recovery.user is not None:
        announce_to_account(user=recovery.user, template="recovery_proof_result", context=context)
        addresses = {a.lower() for a in verified_addresses(recovery.user)}
    if recovery.contact_confirmed_at and recovery.contact_email.lower() not in addresses:
        send_mail(to=[recovery.contact_email], template="recovery_proof_result",
                  context={**context, "requester": True})


@transaction.atomic
def after_proof(*, recovery: RecoveryRequest) -> None:
    """Move ``recovery`` on when its sources allow (DESIGN §5): into the announced 24-hour
    wait that ends in completion (no projects, two independent sources), to awaiting approval
    when they are enough, or into the enforced waiting period when a 2FA account has one.
    A block on the account holds the request instead: nothing moves on during one."""
    recovery.refresh_from_db()
    if recovery.user is None or recovery.state not in (State.AWAITING_PROOF,
                                                        State.IN_WAITING_PERIOD):
        return
    if active_block(recovery.user) is not None:
        hold(recovery=recovery, reason="A proof arrived while the account's recovery is blocked.")
    elif qualifies_for_auto_wait(recovery):
        _start_auto_wait(recovery)
    elif not missing_proof(recovery):
        workflow.move(recovery=recovery, to=State.AWAITING_APPROVAL,
                      actor=workflow.Actor.SYSTEM, reason="The independent sources are enough.")
    elif (recovery.state == State.AWAITING_PROOF and has_second_factor(recovery.user)
          and len(independent_sources(recovery)) == 1):
        workflow.move(recovery=recovery, to=State.IN_WAITING_PERIOD,
                      actor=workflow.Actor.SYSTEM,
                      reason="One independent source on an account with two-step sign-in: "
                             "a waiting period.",
                      wait_ends_at=timezone.now() + settings.RECOVERY_WAIT)


def _start_auto_wait(recovery: RecoveryRequest) -> None:
    if recovery.state == State.IN_WAITING_PERIOD and recovery.completes_automatically:
        return  # announced already; a third proof does not restart the clock
    RecoveryRequest.objects.filter(pk=recovery.pk).update(completes_automatically=True)
    recovery.refresh_from_db()
    workflow.move(recovery=recovery, to=State.IN_WAITING_PERIOD, actor=workflow.Actor.SYSTEM,
                  reason="Two independent sources on an account that owns no project: it "
                         "completes by itself after the announced wait unless someone objects.",
                  wait_ends_at=timezone.now() + auto_wait())
