"""Between the password and the second factor of a full re-authentication.

Kept in the signed-in session: whose password was confirmed, when, and where to go afterwards.
It is NOT a re-authentication: ``require_recent_auth`` never looks at it, and it is good for
one account (the session's) for ``MAX_AGE`` only, the same ten minutes as a partial sign-in.
"""

import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from django.http import HttpRequest

from relatch.accounts.models import User
from relatch.mfa.newdevice.partial import MAX_AGE

_SESSION_KEY = "relatch_reauth_factor_step"


@dataclass(frozen=True)
class FactorStep:
    """A re-authentication whose password was right, waiting for a second factor."""

    user_id: int
    started_at: int  # Unix time
    next_url: str = ""
    failure_noted: bool = False  # a SECOND_FACTOR_FAILED was written for this step

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(self.started_at, tz=UTC) + MAX_AGE


def begin_factor_step(request: HttpRequest, *, user: User, next_url: str) -> FactorStep:
    """Remember that ``user`` just confirmed their password in this session."""
    step = FactorStep(user_id=user.pk, started_at=int(time.time()), next_url=next_url)
    _store(request, step)
    return step


def current_factor_step(request: HttpRequest, *, user: User) -> FactorStep | None:
    """This session's factor step for ``user``, or None: none started, expired, or another
    account's (a session that changed hands must confirm the password again)."""
    stored = request.session.get(_SESSION_KEY)
    if not isinstance(stored, dict):
        return None
    user_id, started_at = stored.get("user"), stored.get("at")
    if not (isinstance(user_id, int) and isinstance(started_at, int)) or user_id != user.pk:
        return None
    if time.time() - started_at > MAX_AGE.total_seconds():
        return None
    next_url = stored.get("next")
    return FactorStep(
        user_id=user_id,
        started_at=started_at,
        next_url=next_url if isinstance(next_url, str) else "",
        failure_noted=stored.get("noted") is True,
    )


def stored_next_url(request: HttpRequest) -> str:
    """Where the (perhaps expired) step was going, to start again from the password."""
    stored = request.session.get(_SESSION_KEY)
    value = stored.get("next") if isinstance(stored, dict) else ""
    return value if isinstance(value, str) else ""


def note_failure_told(request: HttpRequest, step: FactorStep) -> None:
    """The owner was told of this step's first wrong factor: not again for the same step."""
    _store(request, replace(step, failure_noted=True))


def end_factor_step(request: HttpRequest) -> None:
    request.session.pop(_SESSION_KEY, None)


def _store(request: HttpRequest, step: FactorStep) -> None:
    request.session[_SESSION_KEY] = {
        "user": step.user_id,
        "at": step.started_at,
        "next": step.next_url,
        "noted": step.failure_noted,
    }
