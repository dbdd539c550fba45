"""Full re-authentication for an account with a second factor (ASVS 7.5.1, OWASP MFA6,
NIST N13): the password, then one of the factors the sign-in's second step offers.

    step = confirm_password_then_factor(request=..., user=..., password=..., next_url=...)
    outcome = reauthenticate_with_app_code(request=..., user=..., step=..., code=...)

The factors are checked by ``relatch.mfa.factor_checks`` under the same limits as at sign-in
(``relatch.mfa.throttling``; failures here count there too). Unlike a sign-in there is no
new-device check: this browser already holds a signed-in session. A recovery code is spent
and announced as at sign-in, and the page then asks for a new set (NIST N2).

Events: REAUTH_FAILED for a wrong password or factor (with its factor), SIGNIN_THROTTLED when a
limit refused an attempt unchecked, REAUTH_SUCCEEDED with the second factor on success; the
first wrong factor of a step is a SECOND_FACTOR_FAILED, told to the owner (OWASP MFA4).
"""

from dataclasses import dataclass

from django.db import transaction
from django.http import HttpRequest

from relatch.accounts.models import User
from relatch.accounts.signin.services import (
    PasswordStep,
    confirm_password,
    finish_reauthentication,
)
from relatch.audit.models import EventKind
from relatch.mfa.factor_checks import (
    FactorCheck,
    check_app_code,
    check_recovery_code,
    check_security_key,
    lock_account,
    record_factor_failure,
)
from relatch.mfa.newdevice.notices import note_second_factor_failure
from relatch.mfa.reauth.state import (
    FactorStep,
    begin_factor_step,
    end_factor_step,
    note_failure_told,
)

_DURING = "reauth"
CODE_GONE = "That recovery code was just used. Enter another one."


@dataclass(frozen=True)
class ReauthOutcome:
    """What a factor attempt led to. ``codes_left`` is set when a recovery code was spent."""

    passed: bool
    message: str = ""
    status: int = 200
    codes_left: int | None = None


def confirm_password_then_factor(
    *, request: HttpRequest, user: User, password: str, next_url: str
) -> PasswordStep:
    """The first half: the password, under the sign-in's password limits (REAUTH_FAILED on a
    wrong one). When right, the session may try a factor for the next ten minutes; nothing
    counts as re-authenticated yet."""
    step = confirm_password(request=request, user=user, password=password, during=_DURING)
    if step.user is not None:
        begin_factor_step(request, user=user, next_url=next_url)
    return step


@transaction.atomic
def reauthenticate_with_app_code(
    *, request: HttpRequest, user: User, step: FactorStep, code: str
) -> ReauthOutcome:
    """The second half with an authenticator app code (already well-formed, see the form)."""
    user = lock_account(user)
    check = check_app_code(request=request, user=user, code=code, during=_DURING)
    return _after_check(request, user, step, check)


@transaction.atomic
def reauthenticate_with_recovery_code(
    *, request: HttpRequest, user: User, step: FactorStep, code: str
) -> ReauthOutcome:
    """The second half with a recovery code: spent and announced when it passes."""
    user = lock_account(user)
    check = check_recovery_code(request=request, user=user, code=code, during=_DURING)
    return _after_check(request, user, step, check)


@transaction.atomic
def reauthenticate_with_security_key(
    *, request: HttpRequest, user: User, step: FactorStep, credential_json: str
) -> ReauthOutcome:
    """The second half with one of the account's security keys."""
    user = lock_account(user)
    check = check_security_key(
        request=request, user=user, credential_json=credential_json, during=_DURING
    )
    return _after_check(request, user, step, check)


def _after_check(
    request: HttpRequest, user: User, step: FactorStep, check: FactorCheck
) -> ReauthOutcome:
    if check.passed:
        return _passed(request, user, check)
    if check.counted:
        return _failed(request, user, step, check)
    return ReauthOutcome(passed=False, message=check.message, status=check.status)


def _passed(request: HttpRequest, user: User, check: FactorCheck) -> ReauthOutcome:
    from relatch.mfa.recovery_codes.services import (
        RecoveryCodeAlreadyUsedError,
        spend_recovery_code,
    )

    codes_left = None
    if check.code is not None:
        try:
            codes_left = spend_recovery_code(request=request, user=user, code=check.code)
        except RecoveryCodeAlreadyUsedError:  # the same code in two tabs at once: one wins
            return ReauthOutcome(passed=False, message=CODE_GONE)
    end_factor_step(request)
    finish_reauthentication(
        request=request, user=user, factor=check.factor, details={"password": True}
    )
    return ReauthOutcome(passed=True, codes_left=codes_left)


def _failed(
    request: HttpRequest, user: User, step: FactorStep, check: FactorCheck
) -> ReauthOutcome:
    record_factor_failure(
        request=request,
        user=user,
        check=check,
        kind=EventKind.REAUTH_FAILED,
        details={"during": _DURING},
    )
    # Someone in this session knows the password but not the factor: the owner hears of it.
    if not step.failure_noted:
        note_second_factor_failure(
            request=request, user=user, factor=check.factor, during=_DURING
        )
        note_failure_told(request, step)
    return ReauthOutcome(passed=False, message=check.message)
