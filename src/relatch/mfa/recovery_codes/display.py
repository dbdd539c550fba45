"""New codes kept for their one display, and for download and print while that page is open.

The codes exist in clear only between ``generate_recovery_codes`` and the page that shows them.
The page is a redirect away (so a reload never makes a new set), and its download link is a
second request, so they must live a few minutes somewhere. Not in the database in clear: the
session is a database row (and is in every backup). They are split in two instead:

- the session holds the codes XORed with a random pad of the same length (a one-time pad);
- the pad is in a short-lived, signed, HttpOnly cookie of the browser that made the set.

Neither half alone says anything about the codes. Both halves are dropped when the page is
loaded a second time, when the user confirms they saved the codes, or after DISPLAY_SECONDS.
"""

import base64
import secrets
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from relatch.mfa.models import RecoveryCodeSet

DISPLAY_SECONDS = 10 * 60
_SESSION_KEY = "relatch_recovery_codes_display"
_COOKIE = "relatch-recovery-codes-pad"
_SALT = "relatch.recovery_codes.display"


@dataclass(frozen=True)
class PendingCodes:
    """Codes of the current set still kept for display; ``shown`` once the page showed them."""

    codes: list[str]
    shown: bool


def _cookie_path() -> str:
    return reverse("recovery_codes:manage")


def keep_for_display(
    request: HttpRequest, response: HttpResponse, *, codes: list[str], set_id: int
) -> None:
    """Keep ``codes`` (of the set ``set_id``) for this browser for DISPLAY_SECONDS."""
    plain = "\n".join(codes).encode()
    pad = secrets.token_bytes(len(plain))
    request.session[_SESSION_KEY] = {
        "set_id": set_id,
        "cipher": _b64(bytes(a ^ b for a, b in zip(plain, pad, strict=True))),
        "until": int(time.time()) + DISPLAY_SECONDS,
        "shown": False,
    }
    response.set_signed_cookie(
        _COOKIE,
        _b64(pad),
        salt=_SALT,
        max_age=DISPLAY_SECONDS,
        path=_cookie_path(),
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Strict",
    )


def pending_codes(request: HttpRequest, *, user_id: int) -> PendingCodes | None:
    """The codes kept for this browser, if both halves are here, in time, and still the
    account's current set (a set made since, in another browser, makes them worthless)."""
    kept = _kept(request, user_id)
    pad_text = request.get_signed_cookie(_COOKIE, default=None, salt=_SALT)
    if kept is None or pad_text is None:
        return None
    try:
        cipher, pad = base64.b64decode(kept["cipher"]), base64.b64decode(pad_text)
    except (KeyError, ValueError, TypeError):  # a tampered half: treat as gone
        return None
    if len(cipher) != len(pad):
        return None
    plain = bytes(a ^ b for a, b in zip(cipher, pad, strict=True))
    return PendingCodes(codes=plain.decode(errors="replace").split("\n"), shown=bool(kept["shown"]))


def _kept(request: HttpRequest, user_id: int) -> dict[str, Any] | None:
    kept = request.session.get(_SESSION_KEY)
    if not isinstance(kept, dict) or int(kept.get("until", 0)) < time.time():
        return None
    set_id = kept.get("set_id")
    if not isinstance(set_id, int):
        return None
    if not RecoveryCodeSet.objects.filter(pk=set_id, user_id=user_id).exists():
        return None
    return kept


def mark_shown(request: HttpRequest) -> None:
    """The page showed the codes: the next load of it will not (download still works)."""
    kept = request.session.get(_SESSION_KEY)
    if isinstance(kept, dict):
        request.session[_SESSION_KEY] = {**kept, "shown": True}


def forget(request: HttpRequest, response: HttpResponse) -> None:
    """Drop both halves: the codes cannot be shown or downloaded again."""
    request.session.pop(_SESSION_KEY, None)
    response.delete_cookie(_COOKIE, path=_cookie_path(), samesite="Strict")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
