"""One second factor checked under the factor limits, for every flow that asks for one.

The sign-in app's factor step (for a sign-in's second step and for a full re-authentication)
and the recovery proofs all do, per attempt:

    user = lock_account(user)                       # one attempt per account at a time
    check = check_app_code(request=..., user=user, code=..., during="second_factor")
    if check.passed: ...                            # the flow decides what a pass leads to
    elif check.counted: record_factor_failure(...)  # a real wrong answer: counted, an event
    else: ...                                       # refused unchecked (limit) or unreadable

A check refused by a limit (``relatch.mfa.throttling``) is neither verified nor counted and is
a SIGNIN_THROTTLED event; input that is not an attempt at all (a malformed key answer, no app
on the account) is refused with a 400 and not counted. Nothing here signs anyone in, spends a
recovery code or writes the success event: the flows do, because what a pass means differs.
"""

from dataclasses import dataclass

from django.http import HttpRequest

from relatch.accounts.models import User
from relatch.audit.models import EventKind, Factor
from relatch.audit.services import record_event
from relatch.mfa import throttling
from relatch.mfa.models import RecoveryCode
from relatch.web.client import client_ip

WRONG_RECOVERY_CODE = "That is not one of your unused recovery codes."
# Reasons that are not a wrong answer: neither counted nor a failure event.
_UNCOUNTED = frozenset({"throttled", "malformed", "no_device"})


@dataclass(frozen=True)
class FactorCheck:
    """What one attempt with ``factor`` was worth.

    ``reason`` is "ok", "throttled", "malformed", "no_device", or the verifier's reason for a
    wrong answer ("wrong", "replayed", "clock_skew", "invalid", "no_challenge", ...).
    ``code`` is the recovery code that matched (found, not spent).
    """

    factor: Factor
    passed: bool
    reason: str
    message: str = ""
    status: int = 200
    code: RecoveryCode | None = None

    @property
    def counted(self) -> bool:
        """A real wrong answer, which the factor limits count."""
        return not self.passed and self.reason not in _UNCOUNTED


def lock_account(user: User) -> User:
    """The account's row, locked until the transaction ends: parallel guesses queue up, so
    they cannot slip past the counters (the caller runs in ``transaction.atomic``)."""
    return User.objects.select_for_update().get(pk=user.pk)


def check_app_code(*, request: HttpRequest, user: User, code: str, during: str) -> FactorCheck:
    """An authenticator app code (already well-formed, see the forms) under the limits."""
    from relatch.mfa.totp.services import verify_totp

    if refusal := _throttled(request, user, Factor.TOTP, during):
        return refusal
    totp = verify_totp(request=request, user=user, code=code)
    if totp.ok:
        return FactorCheck(factor=Factor.TOTP, passed=True, reason="ok")
    status = 400 if totp.reason in _UNCOUNTED else 200
    return FactorCheck(
        factor=Factor.TOTP, passed=False, reason=totp.reason, message=totp.message, status=status
    )


def check_recovery_code(
    *, request: HttpRequest, user: User, code: str, during: str
) -> FactorCheck:
    """A recovery code under the limits; a match is returned in ``.code``, NOT spent."""
    from relatch.mfa.recovery_codes.services import find_unused_code

    if refusal := _throttled(request, user, Factor.RECOVERY_CODE, during):
        return refusal
    found = find_unused_code(user=user, code=code)
    if found is None:
        return FactorCheck(
            factor=Factor.RECOVERY_CODE, passed=False, reason="wrong", message=WRONG_RECOVERY_CODE
        )
    return FactorCheck(factor=Factor.RECOVERY_CODE, passed=True, reason="ok", code=found)


def check_security_key(
    *, request: HttpRequest, user: User, credential_json: str, during: str
) -> FactorCheck:
    """One of ``user``'s security keys answering this session's challenge, under the limits."""
    from relatch.mfa.webauthn.services import WebAuthnError, verify_authentication

    if refusal := _throttled(request, user, Factor.WEBAUTHN, during):
        return refusal
    try:
        verify_authentication(request=request, user=user, credential_json=credential_json)
    except WebAuthnError as error:
        # A malformed answer did not come from a key: not an attempt, so not counted.
        status = 400 if error.reason == "malformed" else 200
        return FactorCheck(
            factor=Factor.WEBAUTHN,
            passed=False,
            reason=error.reason,
            message=error.message,
            status=status,
        )
    return FactorCheck(factor=Factor.WEBAUTHN, passed=True, reason="ok")


def record_factor_failure(
    *,
    request: HttpRequest,
    user: User,
    check: FactorCheck,
    kind: EventKind,
    details: dict[str, str | bool],
) -> None:
    """Count a wrong answer against the client's IP and write ``kind`` (SIGNIN_FAILED or
    REAUTH_FAILED) with its factor: that event is what the per-account limit counts."""
    throttling.count_ip_failure(factor=check.factor, ip=client_ip(request))
    record_event(
        user=user,
        kind=kind,
        request=request,
        factor=check.factor,
        details={**details, "reason": check.reason},
    )


def _throttled(request: HttpRequest, user: User, factor: Factor, during: str) -> FactorCheck | None:
    throttle = throttling.factor_throttle(user=user, factor=factor, ip=client_ip(request))
    if throttle is None:
        return None
    record_event(
        user=user,
        kind=EventKind.SIGNIN_THROTTLED,
        request=request,
        factor=factor,
        details={"reason": str(throttle.reason), "during": during},
    )
    return FactorCheck(
        factor=factor, passed=False, reason="throttled", message=throttle.message, status=429
    )
