"""A right password waiting for its second factor, kept in the (server-side) session under the
flow's own key: a partial sign-in (``newdevice.partial``) or a re-authentication's factor step
(``reauth.state``). Either is good for ``MAX_AGE`` after it started, and is not a sign-in or a
re-authentication itself: no page that needs one looks at it."""

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from django.http import HttpRequest

from relatch.accounts.models import User

MAX_AGE = timedelta(minutes=10)


class Pending(Protocol):
    """A right password waiting for its second factor, in this browser's session."""

    @property
    def user(self) -> User: ...

    @property
    def started_at(self) -> int: ...  # Unix time

    @property
    def next_url(self) -> str: ...  # where to go afterwards

    @property
    def failure_noted(self) -> bool: ...  # the owner was told of a wrong factor already

    @property
    def expires_at(self) -> datetime: ...


@dataclass(frozen=True)
class KeptStep:
    """What every kept step records: whose password was right, when (Unix time), where to go
    afterwards, and whether the owner was told of a wrong factor; ``stored``: all of it, with
    the flow's own values."""

    user_id: int
    started_at: int
    next_url: str
    failure_noted: bool
    stored: dict[str, Any]


def keep_step(request: HttpRequest, key: str, step: Pending, **extra: Any) -> None:
    """Keep ``step`` under ``key``, replacing what was there; ``extra``: the flow's own values
    (JSON-safe)."""
    request.session[key] = {
        "user": step.user.pk,
        "at": step.started_at,
        "next": step.next_url,
        "noted": step.failure_noted,
        **extra,
    }


def kept_step(request: HttpRequest, key: str) -> KeptStep | None:
    """The step kept under ``key``, expired or not; None when there is none (or nothing this
    code wrote)."""
    stored = kept(request, key)
    user_id, started_at = stored.get("user"), stored.get("at")
    if not (isinstance(user_id, int) and isinstance(started_at, int)):
        return None
    return KeptStep(
        user_id=user_id,
        started_at=started_at,
        next_url=kept_next_url(request, key),
        failure_noted=stored.get("noted") is True,
        stored=stored,
    )


def kept(request: HttpRequest, key: str) -> dict[str, Any]:
    """What the session keeps under ``key``; empty when nothing (or nothing this code wrote)."""
    stored = request.session.get(key)
    return stored if isinstance(stored, dict) else {}


def drop(request: HttpRequest, key: str) -> None:
    """Forget what is kept under ``key``: the step is over."""
    request.session.pop(key, None)


def kept_next_url(request: HttpRequest, key: str) -> str:
    """Where the (perhaps expired) step was going, to start again from the password."""
    value = kept(request, key).get("next")
    return value if isinstance(value, str) else ""


def expired(started_at: int) -> bool:
    """Whether a step that started at ``started_at`` (Unix time) is too old to go on."""
    return time.time() - started_at > MAX_AGE.total_seconds()


def expires_at(started_at: int) -> datetime:
    """When a step that started at ``started_at`` (Unix time) stops working."""
    return datetime.fromtimestamp(started_at, tz=UTC) + MAX_AGE
