"""The requester's proofs through the JSON API (``Authorization: Bearer <public_id>.<token>``):
list what staff asked for, answer it, have a code mailed, have a pushed branch checked.

The same rules and words as the proof page: the services decide, a wrong answer is a 400
saying what the page says, and no answer is ever echoed back. A proof is shown as the page's
read model (relatch.recovery.proofs.queries), in its words (relatch.recovery.proofs.wording);
a refusal of the services is answered by the handler of relatch.api.api. A proof of another
request, or of a request refused quietly, is the same 404.
"""

from typing import Any

from django.http import HttpRequest
from ninja import Path, Router, Status
from ninja.errors import HttpError

from relatch.api.auth import status_token
from relatch.api.schemas import (
    AddressChoiceIn,
    AnswerIn,
    DetailOut,
    ErrorOut,
    ProofAnsweredOut,
    RequesterProofOut,
)
from relatch.mfa.forms import APP_CODE_MESSAGE, AppCodeForm, RecoveryCodeForm
from relatch.recovery.models import ProofKind, RecoveryProof, RecoveryRequest
from relatch.recovery.proofs import branch_checks, forms, services
from relatch.recovery.proofs.evidence import verified_account_emails
from relatch.recovery.proofs.factors import submit_factor
from relatch.recovery.proofs.queries import pending_requester_proofs, requester_proof, why_not
from relatch.recovery.proofs.wording import (
    ACCEPTED,
    CHOOSE_ADDRESS,
    CO_OWNER_ANSWERS,
    CODE_SENT,
    OTHER_KIND,
    UNREADABLE,
)
from relatch.recovery.requester.services import refused_quietly

router = Router(tags=["recovery: requester"])
ERRORS = {400: ErrorOut, 401: ErrorOut, 404: ErrorOut, 422: ErrorOut}
MAX_ID = 2**31 - 1
ProofId = Path(..., ge=1, le=MAX_ID)
NO_SUCH_PROOF = "This request has no such proof."
NOT_ANSWERED_HERE = {
    ProofKind.REPO_BRANCH: "A branch proof is not answered: push the branch, then ask for a "
                           "check at /api/v1/recovery/status/proofs/{proof_id}/check.",
    ProofKind.CO_OWNER: CO_OWNER_ANSWERS,
    ProofKind.SECURITY_KEY: "A security key answers on the proof page, in a browser: the "
                            "key signs for this site, not for an API client.",
}
# The page's form and its message for an answer it cannot even read, by kind.
ANSWER_FORMS: dict[str, tuple[type[Any], str, str]] = {
    ProofKind.API_TOKEN: (forms.ApiTokenForm, "token", UNREADABLE[ProofKind.API_TOKEN]),
    ProofKind.PASSWORD: (forms.PasswordForm, "password", UNREADABLE[ProofKind.PASSWORD]),
    ProofKind.ACCOUNT_EMAIL: (forms.CodeForm, "code", UNREADABLE[ProofKind.ACCOUNT_EMAIL]),
    ProofKind.TOTP: (AppCodeForm, "code", APP_CODE_MESSAGE),
    ProofKind.RECOVERY_CODE: (RecoveryCodeForm, "code", "Enter one of the recovery codes."),
}


def _recovery(request: HttpRequest) -> RecoveryRequest:
    recovery: RecoveryRequest = request.auth  # type: ignore[attr-defined]
    return recovery


def _proof_of(recovery: RecoveryRequest, proof_id: int) -> RecoveryProof:
    """The proof if it belongs to this request; a quietly refused request has none to show
    (its requester must not learn it was refused)."""
    proof = (RecoveryProof.objects.select_related("request__user")
             .filter(pk=proof_id, request=recovery).first())
    if proof is None or refused_quietly(recovery):
        raise HttpError(404, NO_SUCH_PROOF)
    return proof


def describe(proof: RecoveryProof) -> RequesterProofOut:
    """``proof`` as its page shows it to the holder of the status link."""
    return RequesterProofOut.model_validate(requester_proof(proof))


@router.get("", response={200: list[RequesterProofOut], **ERRORS}, auth=status_token)
def pending_proofs(request: HttpRequest) -> list[RequesterProofOut]:
    """The proofs staff asked for that still wait for an answer, with what to do."""
    recovery = _recovery(request)
    if refused_quietly(recovery):
        return []
    return [RequesterProofOut.model_validate(shown)
            for shown in pending_requester_proofs(recovery)]


def _answered(proof: RecoveryProof, outcome: bool) -> ProofAnsweredOut:
    proof.refresh_from_db()
    if not outcome:
        raise HttpError(400, why_not(proof))
    return ProofAnsweredOut(detail=ACCEPTED, proof=describe(proof))


def _submit(request: HttpRequest, proof: RecoveryProof, answer: str) -> bool:
    """Read ``answer`` with the page's form and hand it to the service (a ProofError, i.e.
    a 400, for a kind not answered here or an answer the form cannot read)."""
    if proof.kind not in ANSWER_FORMS:
        raise services.ProofError(NOT_ANSWERED_HERE.get(
            ProofKind(proof.kind), "This proof is not answered here."))
    form_class, field, unreadable = ANSWER_FORMS[proof.kind]
    form = form_class({field: answer})
    if not form.is_valid():
        raise services.ProofError(unreadable)
    value = form.cleaned_data[field]
    if proof.kind in (ProofKind.TOTP, ProofKind.RECOVERY_CODE):
        return submit_factor(request=request, proof=proof, answer=value)
    if proof.kind == ProofKind.API_TOKEN:
        return services.submit_api_token(proof=proof, raw=value)
    if proof.kind == ProofKind.PASSWORD:
        return services.submit_password(proof=proof, password=value)
    return services.submit_account_email_code(proof=proof, code=value)


@router.post("/{proof_id}/answer", response={200: ProofAnsweredOut, **ERRORS},
             auth=status_token)
def answer(request: HttpRequest, payload: AnswerIn,
           proof_id: int = ProofId) -> ProofAnsweredOut:
    """Answer an api_token, password, account_email, totp or recovery_code proof (the token,
    the password, the mailed code, the app's code or a recovery code). Five wrong answers
    fail the proof; app and recovery codes also count against the account's factor limits."""
    proof = _proof_of(_recovery(request), proof_id)
    return _answered(proof, _submit(request, proof, payload.answer))


@router.post("/{proof_id}/send-code", response={202: DetailOut, **ERRORS}, auth=status_token)
def send_code(request: HttpRequest, payload: AddressChoiceIn,
              proof_id: int = ProofId) -> Status[DetailOut]:
    """Mail a 6-digit code to one of the account's verified addresses (``address_choice``
    from the proof's ``addresses``); at most three per proof."""
    proof = _proof_of(_recovery(request), proof_id)
    user = proof.request.user
    emails = {e.pk: e.address for e in verified_account_emails(user)} if user else {}
    if proof.kind != ProofKind.ACCOUNT_EMAIL:
        raise HttpError(400, OTHER_KIND)
    if payload.address_choice not in emails:
        raise HttpError(400, CHOOSE_ADDRESS)
    services.send_account_email_code(proof=proof, address=emails[payload.address_choice])
    return Status(202, DetailOut(detail=CODE_SENT))


@router.post("/{proof_id}/check", response={202: ProofAnsweredOut, 429: ErrorOut, **ERRORS},
             auth=status_token)
def check(request: HttpRequest, proof_id: int = ProofId) -> Status[ProofAnsweredOut]:
    """Have the worker look for the pushed branch of a repo_branch proof (git ls-remote
    runs there, never in this request). 202: queued, or already being checked;
    ``proof.checking`` is true until the check ends, then the proof list shows
    ``last_result`` (or no longer lists the proof once it is satisfied). 429 after six
    checks of a request in an hour, saying when to try again (Relatch re-checks by itself)."""
    proof = _proof_of(_recovery(request), proof_id)
    # A 429 (CheckLimitedError) saying when to try again, or a 400 for a proof that takes no
    # check: both from the handler of relatch.api.api.
    message = branch_checks.request_check(proof=proof, by_requester=True)
    proof.refresh_from_db()
    return Status(202, ProofAnsweredOut(detail=message, proof=describe(proof)))
