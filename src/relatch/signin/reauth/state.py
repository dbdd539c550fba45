"""Between the password and the second factor of a full re-authentication.

Kept in the signed-in session: whose password was confirmed, when, and where to go afterwards.
It is NOT a re-authentication: ``require_recent_auth`` never looks at it, and it is good for
one account (the session's) for ``session.MAX_AGE`` only, the same ten minutes as a partial
sign-in.
"""

import time
from dataclasses import dataclass, replace
from datetime import datetime

from django.http import HttpRequest

from relatch.accounts.models import User
from relatch.signin.factor import session

_SESSION_KEY = "relatch_reauth_factor_step"


@dataclass(frozen=True)
class FactorStep:
    """A re-authentication whose password was right, waiting for a second factor."""

    user: User  # the session's account
    started_at: int  # Unix time
    next_url: str = ""
    failure_noted: bool = False  # a SECOND_FACTOR_FAILED was written for this step

    @property
    def expires_at(self) -> datetime:
        return session.expires_at(self.started_at)


def begin_factor_step(request: HttpRequest, *, user: User, next_url: str) -> FactorStep:
    """Remember that ``user`` just confirmed their password in this session."""
    step = FactorStep(user=user, started_at=int(time.time()), next_url=next_url)
    _store(request, step)
    return step


def current_factor_step(request: HttpRequest, *, user: User) -> FactorStep | None:
    """This session's factor step for ``user``, or None: none started, expired, or another
    account's (a session that changed hands must confirm the password again)."""
    kept = session.kept_step(request, _SESSION_KEY)
    if kept is None or kept.user_id != user.pk or session.expired(kept.started_at):
        return None
    return FactorStep(
        user=user,
        started_at=kept.started_at,
        next_url=kept.next_url,
        failure_noted=kept.failure_noted,
    )


def stored_next_url(request: HttpRequest) -> str:
    """Where the (perhaps expired) step was going, to start again from the password."""
    return session.kept_next_url(request, _SESSION_KEY)


def note_failure_told(request: HttpRequest, step: FactorStep) -> None:
    """The owner was told of this step's first wrong factor: not again for the same step."""
    _store(request, replace(step, failure_noted=True))


def end_factor_step(request: HttpRequest) -> None:
    session.drop(request, _SESSION_KEY)


def _store(request: HttpRequest, step: FactorStep) -> None:
    session.keep_step(request, _SESSION_KEY, step)
