"""What the staff API shows of one request (read-only: built from the desk's queries)."""

from relatch.api.schemas import (
    AddressOut,
    ChangeOut,
    CodesOut,
    EventOut,
    FactsOut,
    KeyOut,
    ProjectOut,
    RequestDetailOut,
    StaffMessageOut,
    StaffProofOut,
    StandingOut,
    TransitionOut,
    VerdictOut,
)
from relatch.audit.models import SecurityEvent
from relatch.recovery.models import ProofKind, RecoveryProof, RecoveryRequest, State
from relatch.recovery.policy import Verdict, verdict
from relatch.recovery.sources import Judged
from relatch.recovery.takeover import recent_changes


def proof_out(proof: RecoveryProof, judged: Judged | None = None) -> StaffProofOut:
    return StaffProofOut(
        id=proof.pk, kind=proof.kind, kind_label=str(ProofKind(proof.kind).label),
        status=proof.status, expires_at=proof.expires_at, evidence=dict(proof.evidence or {}),
        created_at=proof.created_at, checked_at=proof.checked_at,
        requested_by=proof.requested_by.username if proof.requested_by else "",
        counts=judged.counts if judged else None,
        source=str(judged.source or "") if judged else "", why=judged.why if judged else "",
    )


def detail_of(recovery: RecoveryRequest) -> RequestDetailOut:
    recovery.refresh_from_db()
    said = verdict(recovery)
    judged = {item.proof.pk: item for item in said.judged}
    return RequestDetailOut(
        public_id=recovery.public_id, username_claimed=recovery.username_claimed,
        account_matched=recovery.user_id is not None, contact_email=recovery.contact_email,
        still_has=[str(item) for item in recovery.still_has or []],
        description=recovery.description, state=recovery.state,
        state_label=str(State(recovery.state).label), created_at=recovery.created_at,
        updated_at=recovery.updated_at, wait_ends_at=recovery.wait_ends_at,
        awaiting_requester_since=recovery.awaiting_requester_since,
        assigned_to=recovery.assigned_to.username if recovery.assigned_to else "",
        override_reason=recovery.override_reason, reminders_sent=recovery.reminders_sent,
        proofs=[proof_out(p, judged.get(p.pk))
                for p in recovery.proofs.select_related("requested_by")],
        messages=[StaffMessageOut(author=m.author, body=m.body, created_at=m.created_at,
                                  staff=m.staff.username if m.staff else "")
                  for m in recovery.messages.select_related("staff")],
        transitions=[TransitionOut(from_state=t.from_state, to_state=t.to_state, actor=t.actor,
                                   staff=t.staff.username if t.staff else "", reason=t.reason,
                                   created_at=t.created_at)
                     for t in recovery.transitions.select_related("staff")],
        verdict=_verdict(recovery, said), weak_evidence=_weak_evidence(recovery),
        facts=_facts(recovery), standing=_standing(recovery),
        changes=[ChangeOut(id=c.event_id, when=c.when, label=c.label, what=c.what, undo=c.undo,
                           note=c.note) for c in recent_changes(recovery)],
    )


def _standing(recovery: RecoveryRequest) -> StandingOut:
    from relatch.recovery.desk.queries import standing

    found = standing(recovery)
    return StandingOut(
        held_from=recovery.held_from, urgent_since=recovery.urgent_since,
        account_frozen=bool(found and found.is_frozen),
        block_until=found.block_until if found else None,
        completes_automatically=recovery.completes_automatically,
    )


def _verdict(recovery: RecoveryRequest, said: Verdict) -> VerdictOut:
    approvals = [a.staff.username for a in recovery.approvals.select_related("staff")]
    return VerdictOut(may_complete=said.may_complete, missing=list(said.missing),
                      approvals_needed=said.approvals_needed, approvals=approvals,
                      sources=[str(item.source) for item in said.sources])


def _weak_evidence(recovery: RecoveryRequest) -> list[str]:
    try:
        from relatch.recovery.proofs.services import weak_evidence
    except ImportError:  # the proofs area not installed: nothing to show, not an error
        return []
    return [str(item) for item in weak_evidence(recovery)]


def _event(event: SecurityEvent) -> EventOut:
    return EventOut(kind=event.kind, label=str(event.get_kind_display()),
                    created_at=event.created_at, ip_address=event.ip_address)


def _facts(recovery: RecoveryRequest) -> FactsOut | None:
    from relatch.recovery.desk.queries import account_facts

    facts = account_facts(recovery)
    if facts is None:
        return None
    codes = facts.codes
    return FactsOut(
        username=facts.user.username, is_active=facts.user.is_active,
        date_joined=facts.user.date_joined, totp_since=facts.totp_since,
        keys=[KeyOut(label=k.label, created_at=k.created_at, last_used_at=k.last_used_at)
              for k in facts.keys],
        recovery_codes=CodesOut(made_at=codes.made_at, confirmed_at=codes.confirmed_at,
                                total=codes.total, used=codes.used) if codes else None,
        addresses=[AddressOut(address=a.address, primary=a.primary, verified=a.verified,
                              verified_at=a.verified_at) for a in facts.addresses],
        projects=[ProjectOut(name=p.name, role=p.role, urls=list(p.urls))
                  for p in facts.projects],
        signins=[_event(e) for e in facts.signins], events=[_event(e) for e in facts.events],
        earlier_requests=[r.public_id for r in facts.earlier_requests],
    )
