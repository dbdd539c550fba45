"""When a recovery request may complete (DESIGN §5; NIST N6, ASVS 6.4.4).

- An account with a second factor: two satisfied proofs of different kinds, or one proof and
  an enforced waiting period that has ended.
- An account without one: one satisfied proof.
- No proof at all: only a staff override, with a written reason, an ended waiting period and
  two approvals by different staff members.
- An account that owns projects always needs two approvals.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from relatch.mfa.policy import has_second_factor, owns_projects
from relatch.recovery.models import RecoveryProof, RecoveryRequest


@dataclass(frozen=True)
class Verdict:
    """Whether the request may complete now, and if not, what is missing (for staff)."""

    may_complete: bool
    missing: list[str] = field(default_factory=list)
    approvals_needed: int = 1


def satisfied_kinds(recovery: RecoveryRequest) -> set[str]:
    return set(
        recovery.proofs.filter(status=RecoveryProof.Status.SATISFIED).values_list(
            "kind", flat=True
        )
    )


def wait_has_ended(recovery: RecoveryRequest, now: datetime) -> bool:
    return recovery.wait_ends_at is not None and recovery.wait_ends_at <= now


def verdict(recovery: RecoveryRequest, *, now: datetime | None = None) -> Verdict:
    """What the policy says about completing ``recovery`` at ``now``."""
    now = now or timezone.now()
    if recovery.user is None:
        return Verdict(False, ["No account has the username this request names."])
    missing = _missing_proof(recovery, now)
    needed = 2 if owns_projects(recovery.user) or not satisfied_kinds(recovery) else 1
    approvals = recovery.approvals.values("staff").distinct().count()
    if approvals < needed:
        missing.append(f"{needed} staff approval{'s' if needed > 1 else ''} ({approvals} so far)")
    return Verdict(not missing, missing, needed)


def missing_proof(recovery: RecoveryRequest, *, now: datetime | None = None) -> list[str]:
    """What proof or wait is still missing, approvals aside; [] when the proofs are enough."""
    if recovery.user is None:
        return ["No account has the username this request names."]
    return _missing_proof(recovery, now or timezone.now())


def _missing_proof(recovery: RecoveryRequest, now: datetime) -> list[str]:
    assert recovery.user is not None
    kinds = satisfied_kinds(recovery)
    waited = wait_has_ended(recovery, now)
    if not kinds:
        if not recovery.override_reason.strip():
            return ["A satisfied proof, or a staff override with a written reason"]
        return [] if waited else ["The waiting period that an override requires"]
    if not has_second_factor(recovery.user) or len(kinds) >= 2 or waited:
        return []
    return ["A second proof of another kind, or the end of a waiting period"]
