"""One answer to the second-factor step, for any flow (``factor.flow``):

    outcome = answer_factor(request=..., response=..., flow=SIGN_IN, pending=...,
                            factor=Factor.TOTP, answer=code)

The factor is checked by ``relatch.mfa.factor_checks`` under the factor limits
(``relatch.mfa.throttling``: a failure in one flow counts in every other). A pass is the flow's
to act on; a wrong answer is counted, written as the flow's failure event, and its first one in
a step is a SECOND_FACTOR_FAILED told to the owner (OWASP MFA4); an answer refused by a limit,
or not an answer at all, changes nothing but a SIGNIN_THROTTLED event.
"""

from django.db import transaction
from django.http import HttpRequest, HttpResponse

from relatch.accounts.models import User
from relatch.audit.models import Factor
from relatch.mfa.factor_checks import (
    FactorCheck,
    check_app_code,
    check_recovery_code,
    check_security_key,
    lock_account,
    record_factor_failure,
)
from relatch.mfa.models import RecoveryCode
from relatch.mfa.recovery_codes.services import RecoveryCodeAlreadyUsedError, spend_recovery_code
from relatch.signin.factor.flow import FactorFlow, StepOutcome, refused
from relatch.signin.factor.notices import note_second_factor_failure
from relatch.signin.factor.session import Pending

CODE_GONE = "That recovery code was just used. Enter another one."


@transaction.atomic
def answer_factor[P: Pending](
    *,
    request: HttpRequest,
    response: HttpResponse,
    flow: FactorFlow[P],
    pending: P,
    factor: Factor,
    answer: str,
) -> StepOutcome:
    """Check ``answer`` (an app code or recovery code, well-formed, see the forms; or a security
    key's answer) for ``factor`` and act on it as ``flow`` says."""
    user = lock_account(pending.user)
    check = _check(request, user, factor, answer, during=flow.throttled_as)
    if check.passed:
        return flow.on_pass(
            request=request, response=response, pending=pending, user=user, check=check
        )
    if check.counted:
        return _failed(request, flow, pending, user, check)
    return refused(check.message, status=check.status)  # a limit, or not an attempt at all


def spend_code(*, request: HttpRequest, user: User, code: RecoveryCode) -> int | None:
    """Spend a recovery code that passed: how many unused codes are left, or None when it was
    used meanwhile (the same code in two tabs at once: one wins)."""
    try:
        return spend_recovery_code(request=request, user=user, code=code)
    except RecoveryCodeAlreadyUsedError:
        return None


def _check(
    request: HttpRequest, user: User, factor: Factor, answer: str, *, during: str
) -> FactorCheck:
    if factor == Factor.TOTP:
        return check_app_code(request=request, user=user, code=answer, during=during)
    if factor == Factor.RECOVERY_CODE:
        return check_recovery_code(request=request, user=user, code=answer, during=during)
    return check_security_key(request=request, user=user, credential_json=answer, during=during)


def _failed[P: Pending](
    request: HttpRequest, flow: FactorFlow[P], pending: P, user: User, check: FactorCheck
) -> StepOutcome:
    record_factor_failure(
        request=request,
        user=user,
        check=check,
        kind=flow.failure_kind,
        details=flow.failure_details(request, user),
    )
    # Someone here knows the password but not the factor: the owner hears of it, once a step.
    if not pending.failure_noted:
        note_second_factor_failure(
            request=request, user=user, factor=check.factor, during=flow.announced_as
        )
        flow.note_failure_told(request, pending)
    return refused(check.message)
