"""The half-done sign-in between a correct password and a second factor.

It lives in the (server-side) session and names the account, when the password was right, a
random nonce for this browser, and where to go afterwards. It is not a sign-in: no page that
needs one lets it in. It expires after ``session.MAX_AGE``; a factor that passes on a device that
needs the email check restarts the clock, so the check-your-mail page has its own ten minutes.

The nonce ties a mailed confirmation link to this browser: the confirmation row stores only its
SHA-256, and only a session holding the nonce can complete that sign-in.
"""

import hashlib
import secrets
import time
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from django.contrib.auth import logout as auth_logout
from django.http import HttpRequest

from relatch.accounts.models import User
from relatch.accounts.sessions.services import end_current_session
from relatch.signin.factor import session

_SESSION_KEY = "relatch_partial_signin"


@dataclass(frozen=True)
class PartialSignin:
    """A password-checked sign-in waiting for its second factor."""

    user: User
    started_at: int  # Unix time; restarted when a factor passes
    nonce: str
    next_url: str = ""
    passed_factor: str = ""  # a factor that passed where the new-device check applies
    confirmation_id: int | None = None
    failure_noted: bool = False  # a SECOND_FACTOR_FAILED was written for this sign-in

    @property
    def browser_digest(self) -> str:
        return nonce_digest(self.nonce)

    @property
    def expires_at(self) -> datetime:
        return session.expires_at(self.started_at)


def nonce_digest(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


def begin_partial_signin(*, request: HttpRequest, user: User, next_url: str) -> PartialSignin:
    """Start the second step for ``user`` in this browser.

    The session gets a new key, so a session id seen before the password (fixation) is worth
    nothing; an account signed in here before is signed out first (one browser, one account).
    """
    if isinstance(request.user, User):
        end_current_session(request=request, user=request.user)
        auth_logout(request)
    else:
        request.session.cycle_key()
    partial = PartialSignin(
        user=user,
        started_at=int(time.time()),
        nonce=secrets.token_urlsafe(32),
        next_url=next_url,
    )
    _store(request, partial)
    return partial


def current_partial_signin(request: HttpRequest) -> PartialSignin | None:
    """This browser's partial sign-in, or None when there is none, it expired, or the account
    can no longer sign in."""
    partial = _load(request)
    if partial is None or session.expired(partial.started_at):
        return None
    return partial


def session_browser_digest(request: HttpRequest) -> str | None:
    """The digest of this session's nonce, even after the partial sign-in expired: a mailed
    link has its own expiry and only needs to know it is in the browser that started it."""
    nonce = session.kept(request, _SESSION_KEY).get("nonce")
    return nonce_digest(nonce) if isinstance(nonce, str) and nonce else None


def stored_next_url(request: HttpRequest) -> str:
    return session.kept_next_url(request, _SESSION_KEY)


def update_partial_signin(request: HttpRequest, partial: PartialSignin, **changes: Any) -> None:
    """Store ``partial`` with ``changes``; ``restart=True`` starts its ten minutes again."""
    if changes.pop("restart", False):
        changes["started_at"] = int(time.time())
    _store(request, replace(partial, **changes))


def end_partial_signin(request: HttpRequest) -> None:
    session.drop(request, _SESSION_KEY)


def _store(request: HttpRequest, partial: PartialSignin) -> None:
    extra = {
        "nonce": partial.nonce,
        "factor": partial.passed_factor,
        "confirmation": partial.confirmation_id,
    }
    session.keep_step(request, _SESSION_KEY, partial, **extra)


def _load(request: HttpRequest) -> PartialSignin | None:
    kept = session.kept_step(request, _SESSION_KEY)
    nonce = kept.stored.get("nonce") if kept is not None else None
    if kept is None or not isinstance(nonce, str):
        return None
    user = User.objects.filter(pk=kept.user_id, is_active=True).first()
    if user is None:
        return None
    confirmation = kept.stored.get("confirmation")
    return PartialSignin(
        user=user,
        started_at=kept.started_at,
        nonce=nonce,
        next_url=kept.next_url,
        passed_factor=str(kept.stored.get("factor") or ""),
        confirmation_id=confirmation if isinstance(confirmation, int) else None,
        failure_noted=kept.failure_noted,
    )
