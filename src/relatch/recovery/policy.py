"""When a recovery request may complete (DESIGN §5; NIST SP 800-63B-4 §4.2, ASVS 6.4.4).

The policy counts independent sources (``relatch.recovery.sources``), never proof kinds:

- An account with a second factor: two independent sources, or one and an enforced waiting
  period of RECOVERY_WAIT that has ended.
- An account without one: one source.
- No source at all: only a staff override, with a written reason, an ended waiting period
  of RECOVERY_WAIT and two approvals by different staff members.
- An account that owns projects always needs two approvals; any other needs one, or none
  when it completes by itself: two independent sources and an announced AUTO_WAIT with no
  "this wasn't me".
- Nothing completes while the request is on hold, the account's recovery is blocked or the
  account is frozen.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from relatch.accounts.freeze import is_frozen
from relatch.mfa.policy import has_second_factor, owns_projects
from relatch.recovery.holds import active_block
from relatch.recovery.models import RecoveryRequest, State
from relatch.recovery.sources import Judged, independent_sources, judge

# A wait set with ``now + RECOVERY_WAIT`` starts a moment after that ``now``.
_SLACK = timedelta(minutes=1)
NO_ACCOUNT = "No account has the username this request names."


def auto_wait() -> timedelta:
    """The announced wait before a request completes without staff (DESIGN §5: 24 hours)."""
    return settings.RECOVERY_AUTO_WAIT


@dataclass(frozen=True)
class Verdict:
    """Whether the request may complete now, what is missing (for staff), and the sources
    as counted."""

    may_complete: bool
    missing: list[str] = field(default_factory=list)
    approvals_needed: int = 1
    judged: list[Judged] = field(default_factory=list)

    @property
    def sources(self) -> list[Judged]:
        return [item for item in self.judged if item.counts]


def waited_for(recovery: RecoveryRequest, length: timedelta, now: datetime) -> bool:
    """Whether a waiting period of at least ``length`` has run to its end."""
    start, end = recovery.wait_started_at, recovery.wait_ends_at
    return (start is not None and end is not None and end <= now
            and end - start >= length - _SLACK)


def full_wait_over(recovery: RecoveryRequest, now: datetime) -> bool:
    return waited_for(recovery, settings.RECOVERY_WAIT, now)


def verdict(recovery: RecoveryRequest, *, now: datetime | None = None) -> Verdict:
    """What the policy says about staff completing ``recovery`` at ``now``."""
    now = now or timezone.now()
    if recovery.user is None:
        return Verdict(False, [NO_ACCOUNT])
    judged = judge(recovery, now=now)
    sources = [item for item in judged if item.counts]
    missing = _stops(recovery) + _missing(recovery, len(sources), now)
    needed = 2 if owns_projects(recovery.user) or not sources else 1
    approvals = recovery.approvals.values("staff").distinct().count()
    if approvals < needed:
        missing.append(f"{needed} staff approval{'s' if needed > 1 else ''} ({approvals} so far)")
    return Verdict(not missing, missing, needed, judged)


def missing_proof(recovery: RecoveryRequest, *, now: datetime | None = None) -> list[str]:
    """What source or wait is still missing, approvals and holds aside; [] when enough."""
    if recovery.user is None:
        return [NO_ACCOUNT]
    now = now or timezone.now()
    return _missing(recovery, len(independent_sources(recovery, now=now)), now)


def _missing(recovery: RecoveryRequest, sources: int, now: datetime) -> list[str]:
    assert recovery.user is not None
    waited = full_wait_over(recovery, now)
    if not sources:
        if not recovery.override_reason.strip():
            return ["A proof that rests on a source that counts, or a staff override with a "
                    "written reason"]
        return [] if waited else ["The waiting period that an override requires"]
    if not has_second_factor(recovery.user) or sources >= 2 or waited:
        return []
    return ["A second proof from an independent source, or the end of the waiting period"]


def _stops(recovery: RecoveryRequest) -> list[str]:
    """What stops any completion now, whatever the proofs."""
    assert recovery.user is not None
    stops = []
    if recovery.state == State.ON_HOLD:
        stops.append("The request is on hold: resume it or deny it")
    if active_block(recovery.user) is not None:
        stops.append("A \"this wasn't me\" block stands on the account: lift it first")
    if is_frozen(recovery.user):
        stops.append("The account is frozen: unfreeze it first")
    return stops


def qualifies_for_auto_wait(recovery: RecoveryRequest, *, now: datetime | None = None) -> bool:
    """Two independent sources on an account that owns no project: the request may complete
    by itself after an announced AUTO_WAIT."""
    user = recovery.user
    if user is None or owns_projects(user):
        return False
    return len(independent_sources(recovery, now=now)) >= 2


def may_complete_automatically(recovery: RecoveryRequest, *, now: datetime | None = None) -> bool:
    """Whether the system may complete ``recovery`` now, without staff."""
    now = now or timezone.now()
    return (recovery.completes_automatically and recovery.user is not None
            and waited_for(recovery, auto_wait(), now) and not _stops(recovery)
            and qualifies_for_auto_wait(recovery, now=now))
