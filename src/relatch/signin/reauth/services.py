"""Re-authentication before a sensitive action (ASVS 7.5.1): the password again and, for an
account with a second factor, one of its factors too (OWASP MFA6, NIST N13).

    step = reauthenticate(request=..., user=..., password=...)          # no second factor
    step = confirm_password_then_factor(request=..., user=..., password=..., next_url=...)
    # then the factor step, whose flow here is ``REAUTHENTICATION`` (``relatch.signin.factor``)

The password is checked under the sign-in's password limits, the factors under the same limits
as at sign-in (``relatch.mfa.throttling``; failures here count there too). Unlike a sign-in
there is no new-device check: this browser already holds a signed-in session. A recovery code
is spent and announced as at sign-in, and the page then asks for a new set (NIST N2).

Events: REAUTH_FAILED for a wrong password or factor (with its factor), SIGNIN_THROTTLED when a
limit refused an attempt unchecked, REAUTH_SUCCEEDED with the second factor on success; the
first wrong factor of a step is a SECOND_FACTOR_FAILED, told to the owner (OWASP MFA4).
"""

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import resolve_url
from django.urls import reverse

from relatch.accounts.current import signed_in_user
from relatch.accounts.models import User
from relatch.accounts.passwords.checks import PasswordStep, confirm_password
from relatch.accounts.reauth import mark_reauthenticated, reauthenticate_url
from relatch.accounts.sessions.services import session_row_follows_key
from relatch.audit.models import EventKind, Factor
from relatch.audit.services import record_event
from relatch.mfa.factor_checks import FactorCheck
from relatch.mfa.policy import has_second_factor
from relatch.signin.factor.flow import FactorActions, StepOutcome, refused
from relatch.signin.factor.step import CODE_GONE, spend_code
from relatch.signin.reauth import state
from relatch.signin.reauth.state import FactorStep, begin_factor_step, end_factor_step

_DURING = "reauth"


def reauthenticate(*, request: HttpRequest, user: User, password: str) -> PasswordStep:
    """Password again before a sensitive action (ASVS 7.5.1); on success a new session id.

    For an account WITHOUT a second factor only: one with a factor confirms the password with
    ``confirm_password_then_factor`` and then a factor.
    """
    step = confirm_password(request=request, user=user, password=password, during=_DURING)
    if step.user is not None:
        finish_reauthentication(request=request, user=user)
    return step


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
def finish_reauthentication(
    *,
    request: HttpRequest,
    user: User,
    factor: Factor = Factor.PASSWORD,
    details: dict[str, str | bool] | None = None,
) -> None:
    """Every proof a re-authentication asks for passed (the password; for an account with a
    second factor, that factor too): a new session id (ASVS 7.2.4), recently authenticated
    from now on, and a REAUTH_SUCCEEDED event with ``factor``."""
    with session_row_follows_key(request=request, user=user):
        request.session.cycle_key()  # a key seen before the proof is worth nothing after it
    mark_reauthenticated(request)
    record_event(
        user=user,
        kind=EventKind.REAUTH_SUCCEEDED,
        request=request,
        factor=factor,
        details=details or {},
    )


class ReauthFlow:
    """The factor step of a re-authentication: a pass marks the session re-authenticated
    (``relatch.signin.factor.flow.FactorFlow``)."""

    throttled_as = _DURING
    announced_as = _DURING
    failure_kind = EventKind.REAUTH_FAILED
    template = "signin/reauth/factor_step.html"
    actions = FactorActions(
        page="signin:reauthenticate_factor",
        key="signin:reauthenticate_key",
        app="signin:reauthenticate_app",
        code="signin:reauthenticate_code",
    )
    restart_message = "Confirm your password again, then use your second factor."

    def pending(self, request: HttpRequest) -> FactorStep | None:
        return state.current_factor_step(request, user=signed_in_user(request))

    def start_again(self, request: HttpRequest) -> str:
        next_url = state.stored_next_url(request)
        return reauthenticate_url(next_url) if next_url else reverse("signin:reauthenticate")

    def offers_factors(self, pending: FactorStep) -> bool:
        return has_second_factor(pending.user)

    def page_context(self, request: HttpRequest, pending: FactorStep) -> dict[str, object]:
        return {}

    def failure_details(self, request: HttpRequest, user: User) -> dict[str, str | bool]:
        return {"during": _DURING}

    def note_failure_told(self, request: HttpRequest, pending: FactorStep) -> None:
        state.note_failure_told(request, pending)

    def on_pass(
        self,
        *,
        request: HttpRequest,
        response: HttpResponse,
        pending: FactorStep,
        user: User,
        check: FactorCheck,
    ) -> StepOutcome:
        """Spend a recovery code that passed, then count the session as re-authenticated."""
        codes_left = None
        if check.code is not None:
            codes_left = spend_code(request=request, user=user, code=check.code)
            if codes_left is None:
                return refused(CODE_GONE)
        end_factor_step(request)
        finish_reauthentication(
            request=request, user=user, factor=check.factor, details={"password": True}
        )
        return StepOutcome(
            kind="reauthenticated",
            redirect_to=resolve_url(pending.next_url or reverse("account:overview")),
            codes_left=codes_left,
        )


REAUTHENTICATION = ReauthFlow()
