"""What would end a running waiting period sooner, as the requester may be told (issue 19).

During the enforced wait of a 2FA account with one independent source (DESIGN §5), a second
independent source ends it: staff then decide, or a project-less account completes by itself
after the announced 24 hours. The requester's page and mails say so, and which kinds of proof
could do it.

Which kinds could is read from the *kinds* already satisfied, by the source each kind usually
rests on, never from how the policy judged them: "the password no longer counts as knowledge"
would tell the holder of a status link that the password was reset by mail (an account fact).
"""

from datetime import datetime

from relatch.recovery.models import ProofKind, RecoveryProof, RecoveryRequest, State
from relatch.recovery.policy import missing_proof
from relatch.recovery.sources import Source, independent_sources

# The source each kind of proof usually rests on (``relatch.recovery.sources`` judges each
# proof on its own; this is only for choosing the words shown to the requester).
USUAL_SOURCE = {
    ProofKind.SECURITY_KEY: Source.FACTOR,
    ProofKind.TOTP: Source.FACTOR,
    ProofKind.RECOVERY_CODE: Source.FACTOR,
    ProofKind.API_TOKEN: Source.TOKEN,
    ProofKind.REPO_BRANCH: Source.REPOSITORY,
    ProofKind.PASSWORD: Source.KNOWLEDGE,
    ProofKind.ACCOUNT_EMAIL: Source.MAILBOX,
    ProofKind.CO_OWNER: Source.PERSON,
}


def another_proof_ends_wait(recovery: RecoveryRequest, *, now: datetime | None = None) -> bool:
    """Whether ``recovery`` is in a wait that one more independent source would end: one
    source so far and the policy missing only a second one (an override's wait, with no
    source, and the announced automatic wait are not shortened by a proof)."""
    if (recovery.state != State.IN_WAITING_PERIOD or recovery.completes_automatically
            or recovery.user is None):
        return False
    return len(independent_sources(recovery, now=now)) == 1 and bool(
        missing_proof(recovery, now=now))


def kinds_that_could(recovery: RecoveryRequest) -> list[ProofKind]:
    """The kinds of proof whose usual source no satisfied proof of ``recovery`` has, in the
    order the request form lists them."""
    given = recovery.proofs.filter(status=RecoveryProof.Status.SATISFIED)
    used = {USUAL_SOURCE[ProofKind(kind)] for kind in given.values_list("kind", flat=True)}
    return [kind for kind, source in USUAL_SOURCE.items() if source not in used]
