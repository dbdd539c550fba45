"""What one second-factor step is for, and what an answer to it led to.

The step after a right password is the same wherever it is asked: the account's factors on one
page, their three forms, the checks under the factor limits, the failure events and the owner's
notice. Two flows use it, and they differ in what a passed factor means:

    newdevice.services.SIGN_IN        finish the sign-in (or hold it for the mailed link, or
                                      finish a self-service recovery)
    reauth.services.REAUTHENTICATION  mark the signed-in session re-authenticated

A flow also says where its half-done state lives, how its events name the step, and which page
and URLs it has; ``factor.step`` and ``factor.views`` do the rest.
"""

from dataclasses import dataclass
from typing import Literal, Protocol

from django.http import HttpRequest, HttpResponse

from relatch.accounts.models import User
from relatch.audit.models import EventKind
from relatch.mfa.factor_checks import FactorCheck
from relatch.signin.factor.session import Pending

type OutcomeKind = Literal[
    "signed_in",
    "reauthenticated",
    "check_mail",
    "recovery_waiting",
    "recovery_completed",
    "refused",
]


@dataclass(frozen=True)
class StepOutcome:
    """What an answer led to: where the browser goes next, or why it was refused.

    ``used_code``: a recovery code was spent or is held; ``codes_left``: how many unused codes a
    re-authentication with a recovery code left."""

    kind: OutcomeKind
    redirect_to: str = ""
    message: str = ""
    status: int = 200
    used_code: bool = False
    codes_left: int | None = None


def refused(message: str, status: int = 200) -> StepOutcome:
    """The answer changed nothing but the counters; ``message`` says why."""
    return StepOutcome(kind="refused", message=message, status=status)


@dataclass(frozen=True)
class FactorActions:
    """The URL names of the step's page and of the forms its three factors post to."""

    page: str
    key: str
    app: str
    code: str


class FactorFlow[P: Pending](Protocol):
    """One use of the second-factor step; ``on_pass`` is what success means."""

    throttled_as: str  # ``during`` of the SIGNIN_THROTTLED events of its limits
    announced_as: str  # ``during`` of its SECOND_FACTOR_FAILED notice to the owner
    failure_kind: EventKind  # the event a wrong answer writes (SIGNIN_FAILED, REAUTH_FAILED)
    template: str  # its page, which includes ``signin/_factor_choices.html``
    actions: FactorActions
    restart_message: str  # shown when the step is gone and the password comes first again

    def pending(self, request: HttpRequest) -> P | None:
        """This browser's step, or None: never started, expired, or no longer valid."""
        ...

    def start_again(self, request: HttpRequest) -> str:
        """Where to confirm the password again, dropping what is left of the step."""
        ...

    def offers_factors(self, pending: P) -> bool:
        """Whether the account still has factors this step can ask for."""
        ...

    def page_context(self, request: HttpRequest, pending: P) -> dict[str, object]:
        """What the flow's own page shows besides the factor forms."""
        ...

    def failure_details(self, request: HttpRequest, user: User) -> dict[str, str | bool]:
        """The details of the ``failure_kind`` event of a wrong answer."""
        ...

    def note_failure_told(self, request: HttpRequest, pending: P) -> None:
        """Remember that the owner was told of this step's first wrong factor."""
        ...

    def on_pass(
        self,
        *,
        request: HttpRequest,
        response: HttpResponse,
        pending: P,
        user: User,
        check: FactorCheck,
    ) -> StepOutcome:
        """A factor passed (``user`` is locked; a recovery code is found, not yet spent)."""
        ...
