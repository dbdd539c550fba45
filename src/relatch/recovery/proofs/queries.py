"""What the holder of a status link reads about one proof: one read model for the proof page
(relatch.recovery.proofs.views) and the JSON API (/api/v1/recovery/status/proofs), so both
show the same proof with the same words. Read-only."""

from dataclasses import dataclass, field, replace
from datetime import datetime

from django.urls import reverse

from relatch.recovery.models import ProofKind, RecoveryProof, RecoveryRequest
from relatch.recovery.proofs import branch_checks, services
from relatch.recovery.proofs.evidence import mask_address, verified_account_emails
from relatch.recovery.proofs.wording import PROOF_INSTRUCTIONS
from relatch.web.path_prefix import site_url


@dataclass(frozen=True)
class AddressChoice:
    """A verified address of the account, masked: enough for its owner to recognise."""

    choice: int
    masked: str


@dataclass(frozen=True)
class RequesterProof:
    """A proof as its page shows it to the holder of the status link."""

    id: int
    public_id: str  # the request's
    kind: str
    kind_label: str
    status: str
    status_label: str
    is_pending: bool
    expires_at: datetime | None
    instructions: str
    attempts_left: int
    # repo_branch, pending: the exact branch to push where, and what the checks saw. All
    # empty when the branch cannot be shown any more.
    repository: str = ""
    project: str = ""
    branch: str = ""
    checking: bool = False
    last_result: str = ""
    last_result_words: str = ""
    last_checked_at: datetime | None = None
    # account_email, pending: the account's verified addresses, masked; the last one mailed.
    addresses: list[AddressChoice] = field(default_factory=list)
    code_sent_to: str = ""
    # co_owner: the page a co-owner opens to vouch.
    vouch_url: str = ""


def requester_proof(proof: RecoveryProof) -> RequesterProof:
    """``proof`` as the proof page and the API show it (its request and user preloaded)."""
    pending = proof.status == RecoveryProof.Status.PENDING
    shown = RequesterProof(
        id=proof.pk, public_id=proof.request.public_id, kind=proof.kind,
        kind_label=str(ProofKind(proof.kind).label), status=proof.status,
        status_label=str(RecoveryProof.Status(proof.status).label), is_pending=pending,
        expires_at=proof.expires_at, instructions=PROOF_INSTRUCTIONS.get(proof.kind, ""),
        attempts_left=max(services.MAX_ATTEMPTS - proof.attempts, 0),
    )
    if pending and proof.kind == ProofKind.REPO_BRANCH:
        return _with_branch(shown, proof)
    if pending and proof.kind == ProofKind.ACCOUNT_EMAIL:
        return _with_addresses(shown, proof)
    if proof.kind == ProofKind.CO_OWNER:
        return replace(shown, vouch_url=site_url(reverse("proofs:vouch", args=[proof.pk])))
    return shown


def _with_branch(shown: RequesterProof, proof: RecoveryProof) -> RequesterProof:
    try:
        branch = services.branch_to_push(proof)
    except services.ProofError:
        return shown  # the page says it cannot be shown any more; so does an empty branch
    check = branch_checks.shown(proof)
    return replace(shown, branch=branch, repository=str(proof.evidence.get("repository", "")),
                   project=str(proof.evidence.get("project", "")), checking=check.checking,
                   last_result=check.result, last_result_words=check.words,
                   last_checked_at=check.checked_at)


def _with_addresses(shown: RequesterProof, proof: RecoveryProof) -> RequesterProof:
    user = proof.request.user
    emails = verified_account_emails(user) if user is not None else []
    return replace(shown, addresses=[AddressChoice(choice=e.pk, masked=mask_address(e.address))
                                     for e in emails],
                   code_sent_to=str(proof.evidence.get("sent_to", "")))


def pending_requester_proofs(recovery: RecoveryRequest) -> list[RequesterProof]:
    """The proofs staff asked for that still wait for an answer, oldest first."""
    pending = (recovery.proofs.select_related("request__user")
               .filter(status=RecoveryProof.Status.PENDING).order_by("created_at", "pk"))
    return [requester_proof(proof) for proof in pending]


def why_not(proof: RecoveryProof) -> str:
    """Why ``proof`` was not accepted just now: the page's words, the API's too."""
    status = RecoveryProof.Status
    if proof.status == status.FAILED:
        return "This proof has failed. Staff can see what happened and may ask for another."
    if proof.status == status.EXPIRED:
        return "This proof has expired. Staff may ask for a new one."
    if proof.kind == ProofKind.REPO_BRANCH:
        return branch_checks.RESULT_WORDS["branch absent"]
    left = services.MAX_ATTEMPTS - proof.attempts
    return f"That is not right. {left} attempt{'s' if left != 1 else ''} left."
