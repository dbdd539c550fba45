"""Settling a proof and moving its request on (DESIGN §5; NIST N6).

Every outcome is a SecurityEvent on the account. Mail goes only where it changes what someone
does (``relatch.recovery.notices``): a failed proof to every verified address of the account,
with "this wasn't me" (someone is trying and failing: ASVS 6.3.5); an outcome the requester did
not watch happen (a co-owner's word, the worker's branch check, an expiry) to the requester,
in one mail with where the request went next. A proof answered on the requester's own page
mails nobody: they are reading the answer, and the account hears of the wait or completion it
leads to.
"""

from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from relatch.audit.models import EventKind
from relatch.audit.services import record_event
from relatch.mfa.policy import has_second_factor
from relatch.recovery import notices, workflow
from relatch.recovery.holds import active_block, hold
from relatch.recovery.models import (
    ProofKind,
    RecoveryProof,
    RecoveryRequest,
    RecoveryTransition,
    State,
)
from relatch.recovery.policy import auto_wait, missing_proof, qualifies_for_auto_wait
from relatch.recovery.sources import independent_sources
from relatch.recovery.workflow import requester_label

Status = RecoveryProof.Status
# Proofs are taken only while the request is still open to them; a hold stops the request
# from moving on, not its requester from answering (the owner's own request may be the one
# a hijacker's "this wasn't me" held).
OPEN_STATES = frozenset({State.AWAITING_PROOF, State.IN_WAITING_PERIOD, State.AWAITING_APPROVAL,
                         State.ON_HOLD})
# Kinds settled where the requester does not see it happen: a co-owner answers on their own
# page, the worker runs git. Every other kind is answered on the requester's proof page.
SETTLED_OUT_OF_SIGHT = frozenset({ProofKind.CO_OWNER, ProofKind.REPO_BRANCH})


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
    unseen = proof.kind in SETTLED_OUT_OF_SIGHT or status == Status.EXPIRED
    moved = after_proof(recovery=recovery, tell_requester=False)
    told: set[str] = set()
    if status == Status.FAILED:
        told = notices.tell_account(recovery=recovery, template="recovery_proof_result",
                                    context=_proof_context(proof))
    if unseen and (status != Status.PENDING or moved is not None):
        _tell_requester(proof, moved, told)


def _tell_requester(proof: RecoveryProof, moved: RecoveryTransition | None,
                    told: set[str]) -> None:
    """One mail: the outcome, and where the request went because of it."""
    recovery = proof.request
    recovery.refresh_from_db()
    context = _proof_context(proof)
    if moved is not None:
        context.update(notices.state_context(recovery), to_state=requester_label(recovery.state))
    notices.tell_requester(recovery=recovery, template="recovery_request_update", context=context,
                           told=told)


def _proof_context(proof: RecoveryProof) -> dict[str, Any]:
    return {"kind": ProofKind(proof.kind).label, "status": Status(proof.status).label}


@transaction.atomic
def after_proof(*, recovery: RecoveryRequest,
                tell_requester: bool = True) -> RecoveryTransition | None:
    """Move ``recovery`` on when its sources allow (DESIGN §5): into the announced 24-hour
    wait that ends in completion (no projects, two independent sources), to awaiting approval
    when they are enough, or into the enforced waiting period when a 2FA account has one.
    A block on the account holds the request instead: nothing moves on during one. The move
    made, if any; ``tell_requester`` False: the caller tells the requester (or they watch)."""
    recovery.refresh_from_db()
    if recovery.user is None or recovery.state not in (State.AWAITING_PROOF,
                                                        State.IN_WAITING_PERIOD):
        return None
    if active_block(recovery.user) is not None:
        hold(recovery=recovery, reason="A proof arrived while the account's recovery is blocked.")
        return None  # the hold is told to the requester by itself: staff decide now
    if qualifies_for_auto_wait(recovery):
        return _start_auto_wait(recovery, tell_requester)
    if not missing_proof(recovery):
        return workflow.move(recovery=recovery, to=State.AWAITING_APPROVAL,
                             actor=workflow.Actor.SYSTEM, tell_requester=tell_requester,
                             reason="The independent sources are enough.")
    if (recovery.state == State.AWAITING_PROOF and has_second_factor(recovery.user)
            and len(independent_sources(recovery)) == 1):
        return workflow.move(recovery=recovery, to=State.IN_WAITING_PERIOD,
                             actor=workflow.Actor.SYSTEM, tell_requester=tell_requester,
                             reason="One independent source on an account with two-step "
                                    "sign-in: a waiting period.",
                             wait_ends_at=timezone.now() + settings.RECOVERY_WAIT)
    return None


def _start_auto_wait(recovery: RecoveryRequest,
                     tell_requester: bool) -> RecoveryTransition | None:
    if recovery.state == State.IN_WAITING_PERIOD and recovery.completes_automatically:
        return None  # announced already; a third proof does not restart the clock
    RecoveryRequest.objects.filter(pk=recovery.pk).update(completes_automatically=True)
    recovery.refresh_from_db()
    return workflow.move(
        recovery=recovery, to=State.IN_WAITING_PERIOD, actor=workflow.Actor.SYSTEM,
        tell_requester=tell_requester,
        reason="Two independent sources on an account that owns no project: it completes by "
               "itself after the announced wait unless someone objects.",
        wait_ends_at=timezone.now() + auto_wait())
