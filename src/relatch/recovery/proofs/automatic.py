"""Proofs asked for without staff: what the requester says they still have (DESIGN §5).

PyPI's requests wait for staff to ask for each proof, even when the requester said exactly
what they hold. Here, once a request is filed, the worker asks for every proof that matches an
answer of "what do you still have?" and that the account could satisfy: nothing is asked that
nobody could answer (an app code of an account without an app).
"""

from django.db import transaction

from relatch.accounts.models import User
from relatch.index.models import APIToken, Project
from relatch.recovery.models import ProofKind, RecoveryProof, RecoveryRequest
from relatch.recovery.proofs import repositories
from relatch.recovery.proofs.factors import has_factor
from relatch.recovery.proofs.services import ProofError, request_proof, tell_asked
from relatch.recovery.requester.routing import StillHas

# In the order the requester reads them: the strongest first.
MATCHING = (
    (StillHas.SECURITY_KEY, ProofKind.SECURITY_KEY),
    (StillHas.TOTP, ProofKind.TOTP),
    (StillHas.RECOVERY_CODES, ProofKind.RECOVERY_CODE),
    (StillHas.API_TOKEN, ProofKind.API_TOKEN),
    (StillHas.REPO_PUSH, ProofKind.REPO_BRANCH),
    (StillHas.PASSWORD, ProofKind.PASSWORD),
    (StillHas.EMAIL, ProofKind.ACCOUNT_EMAIL),
)


@transaction.atomic
def request_matching_proofs(*, recovery: RecoveryRequest) -> list[RecoveryProof]:
    """Ask for each proof the requester's answers point to and the account could satisfy;
    the proofs asked for. Runs once, when the request is filed."""
    user = recovery.user
    if user is None:
        return []
    said = set(recovery.still_has or [])
    asked = []
    for answer, kind in MATCHING:
        answerable = _answerable(user, kind, recovery) if answer in said else False
        if answerable is False:
            continue
        project = answerable if isinstance(answerable, Project) else None
        try:
            asked.append(request_proof(recovery=recovery, kind=kind, staff=None,
                                       project=project, tell_requester=False))
        except ProofError:
            continue  # asked already, or no longer answerable: staff can still ask
    if asked:  # one mail for the batch, not one per proof (issue 19)
        tell_asked(recovery=recovery, kinds=[proof.kind for proof in asked], by_staff=False)
    return asked


def _answerable(user: User, kind: ProofKind, recovery: RecoveryRequest) -> Project | bool:
    """False when nobody could answer a proof of ``kind``; for a branch proof, the project
    whose repository it uses."""
    if kind in (ProofKind.TOTP, ProofKind.SECURITY_KEY, ProofKind.RECOVERY_CODE):
        return has_factor(user, kind)
    if kind == ProofKind.API_TOKEN:
        return APIToken.objects.filter(user=user, revoked_at__isnull=True,
                                       purpose=APIToken.Purpose.UPLOAD).exists()
    if kind == ProofKind.PASSWORD:
        return user.has_usable_password()
    if kind == ProofKind.ACCOUNT_EMAIL:
        return user.emails.filter(verified=True).exists()
    return _project_with_repository(user, recovery) or False


def _project_with_repository(user: User, recovery: RecoveryRequest) -> Project | None:
    for project in Project.objects.filter(roles__user=user).order_by("normalized_name"):
        urls, _ = repositories.eligible(account=user, project=project,
                                        filed_at=recovery.created_at)
        if urls:
            return project
    return None
