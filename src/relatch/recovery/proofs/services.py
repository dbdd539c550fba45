"""Proofs the server checks (issue 5 §3, DESIGN §5): staff request one, the requester (or a
co-owner) answers it, the server decides. Each answer is settled by ``outcomes.settle``, which
records it and lets the request move on through ``workflow.move``.
"""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from relatch.accounts.models import User
from relatch.audit.models import EventKind
from relatch.audit.services import record_event
from relatch.index.models import Project, Role
from relatch.index.tokens.services import TokenRefusedError, authenticate_token
from relatch.notify.services import send_mail
from relatch.recovery import notices, workflow
from relatch.recovery.models import ProofKind, RecoveryProof, RecoveryRequest, State
from relatch.recovery.proofs import repositories, tokens
from relatch.recovery.proofs.evidence import (
    mask_address,
    shared_owned_projects,
    verified_account_emails,
)
from relatch.recovery.proofs.evidence import weak_evidence as weak_evidence
from relatch.recovery.proofs.outcomes import OPEN_STATES, settle
from relatch.recovery.proofs.outcomes import after_proof as after_proof
from relatch.recovery.proofs.wording import OTHER_KIND
from relatch.recovery.sources import vouch_refusal
from relatch.web.refusals import Refusal

Status = RecoveryProof.Status
MAX_ATTEMPTS = 5
MAX_CODES_SENT = 3
MAX_SECRET_LENGTH = 1000
CODE_LIFETIME = timedelta(minutes=10)
# How long a requester has to push the branch; the re-check task stops after this.
BRANCH_LIFETIME = getattr(settings, "RECOVERY_BRANCH_PROOF_LIFETIME", timedelta(days=14))
KINDS_CHECKED_HERE = frozenset(ProofKind)
FACTOR_NAMES = {ProofKind.TOTP: "authenticator app", ProofKind.SECURITY_KEY: "security key",
                ProofKind.RECOVERY_CODE: "recovery codes"}


class ProofError(Refusal):
    """A refused proof action; ``message`` says why, plainly. Nothing changed (a 400)."""


@transaction.atomic
def request_proof(*, recovery: RecoveryRequest, kind: str, staff: User | None,
                  project: Project | None = None, tell_requester: bool = True) -> RecoveryProof:
    """Ask the requester for a proof of ``kind`` (``staff`` None: asked automatically from
    what the requester said they still have); for repo_branch, ``project`` names the
    repository. A submitted request moves to awaiting proof. Raises ProofError.
    ``tell_requester`` False: the caller mails one notice for a batch (``tell_asked``)."""
    recovery = RecoveryRequest.objects.select_for_update().get(pk=recovery.pk)
    _check_requestable(recovery, kind, project)
    assert recovery.user is not None
    proof = RecoveryProof.objects.create(request=recovery, kind=kind, requested_by=staff)
    if kind == ProofKind.REPO_BRANCH:
        _prepare_branch(proof, recovery.user, project)
    record_event(user=recovery.user, kind=EventKind.RECOVERY_PROOF_REQUESTED,
                 details={"request": recovery.public_id, "kind": kind})
    if tell_requester:
        tell_asked(recovery=recovery, kinds=[kind], by_staff=staff is not None)
    if recovery.state == State.SUBMITTED:
        actor = workflow.Actor.STAFF if staff else workflow.Actor.SYSTEM
        workflow.move(recovery=recovery, to=State.AWAITING_PROOF, actor=actor,
                      staff=staff, reason=f"Asked for a proof: {ProofKind(kind).label}.")
    return proof


def tell_asked(*, recovery: RecoveryRequest, kinds: list[str], by_staff: bool) -> None:
    """One mail to the requester for proofs asked together, with their status link (the
    proofs' pages hang off it). The state change the first ask makes is not mailed too."""
    notices.tell_requester(recovery=recovery, template="recovery_proof_requested", context={
        "kinds": [str(ProofKind(kind).label) for kind in kinds], "by_staff": by_staff})


def _check_requestable(recovery: RecoveryRequest, kind: str, project: Project | None) -> None:
    if recovery.user is None:
        raise ProofError("No account has the username this request names: no proof can help.")
    if recovery.state not in OPEN_STATES | {State.SUBMITTED}:
        raise ProofError("This request is closed: it takes no more proofs.")
    if kind not in KINDS_CHECKED_HERE:
        raise ProofError("Choose a kind of proof the server checks.")
    pending = recovery.proofs.filter(kind=kind, status=Status.PENDING)
    if project is not None:
        pending = pending.filter(evidence__project=project.name)
    if pending.exists():
        raise ProofError("The requester was already asked for this proof; it is still pending.")
    if kind in FACTOR_NAMES and not _has_factor(recovery.user, kind):
        raise ProofError(f"The account has no {FACTOR_NAMES[ProofKind(kind)]}: nobody could "
                         "answer this proof.")


def _has_factor(user: User, kind: str) -> bool:
    from relatch.recovery.proofs.factors import has_factor

    return has_factor(user, kind)


def _prepare_branch(proof: RecoveryProof, user: User, project: Project | None) -> None:
    if project is None or not Role.objects.filter(user=user, project=project).exists():
        raise ProofError("Choose a project of this account.")
    urls, why_none = repositories.eligible(account=user, project=project,
                                           filed_at=proof.request.created_at)
    if not urls:
        raise ProofError(f"No repository of {project.name} can carry this proof: {why_none}")
    nonce = tokens.new_nonce()
    proof.secret_digest = tokens.digest(tokens.branch_name(proof_id=proof.pk, nonce=nonce))
    proof.expires_at = timezone.now() + BRANCH_LIFETIME
    proof.evidence = {"project": project.name, "repository": urls[0], "nonce": nonce,
                      "checks": 0}
    proof.save()


def branch_to_push(proof: RecoveryProof) -> str:
    """The branch name the requester must push (derived again, never stored)."""
    name = tokens.branch_name(proof_id=proof.pk, nonce=str(proof.evidence.get("nonce", "")))
    if not tokens.matches(name, proof.secret_digest):
        raise ProofError("This proof cannot be shown any more: ask staff for a new one.")
    return name


def _locked(proof_id: int) -> RecoveryProof:
    # Lock only the proof: PostgreSQL cannot lock the nullable side of the join.
    locked = RecoveryProof.objects.select_for_update(of=("self",))
    return locked.select_related("request__user").get(pk=proof_id)


@transaction.atomic
def _expired(proof: RecoveryProof) -> bool:
    """Settle ``proof`` as expired when its time is up (an unanswered code only ends the
    code, not the proof)."""
    if proof.kind == ProofKind.ACCOUNT_EMAIL or proof.expires_at is None:
        return False
    if proof.expires_at > timezone.now():
        return False
    locked = _locked(proof.pk)
    if locked.status == Status.PENDING:
        settle(locked, Status.EXPIRED, result="expired")
    proof.refresh_from_db()
    return True


def open_for_answer(proof: RecoveryProof, kind: ProofKind, *,
                    taking: str = "answers") -> RecoveryProof:
    """The proof, locked, if it may be answered (or checked: ``taking``) now; else
    ProofError."""
    locked = _locked(proof.pk)
    if locked.kind != kind:
        raise ProofError(OTHER_KIND)
    if locked.status != Status.PENDING:
        raise ProofError(f"This proof is {Status(locked.status).label.lower()}: "
                         f"it takes no more {taking}.")
    if locked.request.state not in OPEN_STATES or locked.request.user is None:
        raise ProofError("This request takes no more proofs.")
    return locked


def count_wrong(proof: RecoveryProof, result: str) -> bool:
    """Count a wrong answer; the fifth fails the proof (ASVS 6.3.5: bounded guessing)."""
    proof.attempts += 1
    status = Status.FAILED if proof.attempts >= MAX_ATTEMPTS else Status.PENDING
    settle(proof, status, result=result, attempts=proof.attempts)
    return False


@transaction.atomic
def submit_api_token(*, proof: RecoveryProof, raw: str) -> bool:
    """True when ``raw`` is a usable upload token of the account. The token is never
    recorded: the evidence keeps its name only."""
    if proof.expires_at is not None and _expired(proof):
        return False
    proof = open_for_answer(proof, ProofKind.API_TOKEN)
    if len(raw) > MAX_SECRET_LENGTH:
        return count_wrong(proof, "malformed token")
    try:
        token = authenticate_token(raw=raw.strip())
    except TokenRefusedError as refused:
        return count_wrong(proof, f"token refused ({refused.reason})")
    if token.user_id != proof.request.user_id:
        return count_wrong(proof, "token of another account")
    settle(proof, Status.SATISFIED, result="token of the account", token_name=token.name,
           token_id=token.pk)
    return True


@transaction.atomic
def submit_password(*, proof: RecoveryProof, password: str) -> bool:
    """True when ``password`` is the account's current password (5 tries per proof)."""
    if proof.expires_at is not None and _expired(proof):
        return False
    proof = open_for_answer(proof, ProofKind.PASSWORD)
    user = proof.request.user
    assert user is not None
    if len(password) > MAX_SECRET_LENGTH or not user.check_password(password):
        return count_wrong(proof, "wrong password")
    settle(proof, Status.SATISFIED, result="password of the account")
    return True


@transaction.atomic
def send_account_email_code(*, proof: RecoveryProof, address: str) -> None:
    """Mail a fresh 6-digit code, valid 10 minutes, to ``address``, which must be verified
    on the account (NIST N3). At most three codes per proof."""
    proof = open_for_answer(proof, ProofKind.ACCOUNT_EMAIL)
    assert proof.request.user is not None
    emails = {e.address.lower(): e.address for e in verified_account_emails(proof.request.user)}
    target = emails.get(address.strip().lower())
    if target is None:
        raise ProofError("Choose one of the account's verified addresses.")
    sent = int(proof.evidence.get("codes_sent", 0))
    if sent >= MAX_CODES_SENT:
        raise ProofError("Three codes were sent already: ask staff for a new proof.")
    nonce = tokens.new_nonce()
    proof.secret_digest = tokens.digest(tokens.email_code(proof_id=proof.pk, nonce=nonce))
    proof.expires_at = timezone.now() + CODE_LIFETIME
    proof.evidence = {**proof.evidence, "sent_to": mask_address(target), "codes_sent": sent + 1,
                      "address_id": _address_id(proof.request.user, target)}
    proof.save(update_fields=["secret_digest", "expires_at", "evidence"])
    send_mail(to=[target], template="recovery_proof_code",
              context={"username": proof.request.user.username, "security_notice": True,
                       "request_id": proof.request.public_id, "minutes": 10},
              link_builder="relatch.recovery.proofs.tokens.code_for_mail",
              link_args={"proof_id": proof.pk, "nonce": nonce})


def _address_id(user: User, address: str) -> int:
    # Which address the code went to: the policy asks whether it was verified before the
    # request was filed (relatch.recovery.sources).
    return user.emails.get(address__iexact=address, verified=True).pk


@transaction.atomic
def submit_account_email_code(*, proof: RecoveryProof, code: str) -> bool:
    """True when ``code`` is the last code mailed for this proof and still valid."""
    proof = open_for_answer(proof, ProofKind.ACCOUNT_EMAIL)
    if not proof.secret_digest:
        raise ProofError("Send a code to one of the account's addresses first.")
    if proof.expires_at is None or proof.expires_at <= timezone.now():
        raise ProofError("That code has expired: send a new one.")
    if not tokens.matches(code.strip(), proof.secret_digest):
        return count_wrong(proof, "wrong code")
    proof.secret_digest = ""  # single use
    settle(proof, Status.SATISFIED, result="code from an address of the account")
    proof.save(update_fields=["secret_digest"])
    return True


@transaction.atomic
def vouch_as_co_owner(*, proof: RecoveryProof, co_owner: User, request: HttpRequest,
                      checked_with_them: bool) -> bool:
    """An owner of a project the account also owns, with two-step sign-in and the role for
    30 days before the request, vouches after seeing who asks (DESIGN §5: one person is one
    source). ``checked_with_them``: they said they checked with the account's owner."""
    proof = open_for_answer(proof, ProofKind.CO_OWNER)
    account = proof.request.user
    assert account is not None
    if not checked_with_them:
        raise ProofError("Vouch only after checking with them, through a way you already "
                         "trust, that this request is theirs; then tick the box.")
    refusal = vouch_refusal(recovery=proof.request, co_owner=co_owner)
    if refusal:
        raise ProofError(refusal)
    shared = shared_owned_projects(account, co_owner)
    record_event(user=co_owner, kind=EventKind.RECOVERY_PROOF_CHECKED, request=request,
                 details={"request": proof.request.public_id, "vouched_for": account.username})
    settle(proof, Status.SATISFIED, result="a co-owner vouched", vouched_by=co_owner.username,
           vouched_by_id=co_owner.pk, projects=[p.name for p in shared])
    return True
