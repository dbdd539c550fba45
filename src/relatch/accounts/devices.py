"""Known devices: browsers that have signed in to an account before.

A device is named by a long-lived signed cookie holding a random id (never by its IP address,
which is shared behind NAT and changes on mobile networks). The database keeps only the SHA-256
of the id, one row per (account, device), so one browser may be known to several accounts.

Why it matters: the per-account limit on failed passwords applies only to devices the account
does not know (see ``relatch.accounts.passwords.throttling``). A stranger guessing passwords can
slow down sign-ins from *new* devices, but never locks the owner out of their own browser.

Issue 3 adds a new-device email check on top (the sign-in app's): ``KnownDevice.confirmed`` is
set when a sign-in from the device was confirmed through the mailed link or a self-service
recovery; every browser that completed a sign-in counts as known.
"""

import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from relatch.accounts.models import KnownDevice, User
from relatch.web.client import client_ip, client_user_agent

COOKIE_MAX_AGE = timedelta(days=365)
_COOKIE_SALT = "relatch.accounts.devices"
# token_urlsafe(32): 43 URL-safe characters, 256 bits; anything else in the cookie is ignored.
_DEVICE_ID_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")
# An id issued during this request (its cookie is only on the response), for later reads.
_ISSUED_ATTR = "relatch_issued_device_id"


def cookie_name() -> str:
    """``__Host-`` on https binds the cookie to this exact host, path / and Secure. A site
    under a path (RELATCH_BASE_URL=https://example.org/pypi) scopes it to that path, which
    ``__Host-`` forbids: there ``__Secure-`` still makes browsers refuse it without Secure."""
    if not settings.BASE_URL_IS_HTTPS:
        return "relatch-device"
    return "__Secure-relatch-device" if settings.BASE_PATH else "__Host-relatch-device"


def _cookie_path() -> str:
    # The id lowers the bar to sign in (a known device skips the new-device mail): under a
    # path it must not reach the other applications of the same host, as the session cookie
    # does not (settings.SESSION_COOKIE_PATH).
    return settings.BASE_PATH or "/"


def device_digest(device_id: str) -> str:
    return hashlib.sha256(device_id.encode()).hexdigest()


def device_id_from_request(request: HttpRequest) -> str | None:
    """The device id in the request's cookie (or issued during this request), or None when
    absent, forged, expired or malformed."""
    issued = getattr(request, _ISSUED_ATTR, None)
    if isinstance(issued, str):
        return issued
    value = request.get_signed_cookie(
        cookie_name(),
        default=None,
        salt=_COOKIE_SALT,
        max_age=COOKIE_MAX_AGE,
    )
    if not isinstance(value, str) or not _DEVICE_ID_RE.fullmatch(value):
        return None
    return value


def current_device_digest(request: HttpRequest) -> str | None:
    device_id = device_id_from_request(request)
    return device_digest(device_id) if device_id else None


@dataclass(frozen=True)
class ThisDevice:
    """This browser as ``user``'s account knows it, read once and handed on within a request
    (``row`` is None when the account does not know it)."""

    row: KnownDevice | None

    @property
    def known(self) -> bool:
        return self.row is not None


def this_device(*, request: HttpRequest, user: User) -> ThisDevice:
    """This browser's KnownDevice row for ``user``, if any (one query)."""
    digest = current_device_digest(request)
    if digest is None:
        return ThisDevice(row=None)
    return ThisDevice(row=KnownDevice.objects.filter(user=user, device_digest=digest).first())


def is_known_device(*, request: HttpRequest, user: User) -> bool:
    """True when this browser completed a sign-in to ``user`` before."""
    digest = current_device_digest(request)
    if digest is None:
        return False
    return KnownDevice.objects.filter(user=user, device_digest=digest).exists()


def device_id_for_response(*, request: HttpRequest, response: HttpResponse) -> str:
    """This browser's device id, a new one when it has none; its cookie is (re)set on
    ``response`` and later reads within this request see the id."""
    device_id = device_id_from_request(request) or secrets.token_urlsafe(32)
    setattr(request, _ISSUED_ATTR, device_id)
    _set_cookie(response, device_id)
    return device_id


def remember_device(
    *,
    request: HttpRequest,
    response: HttpResponse,
    user: User,
    confirmed: bool = False,
    known: KnownDevice | None = None,
    method: str = "",
) -> KnownDevice:
    """Record that this browser signed in to ``user`` and (re)set its cookie on ``response``.

    The id in an existing cookie is kept (so the browser stays known to its other accounts);
    the cookie is set again so its year of validity starts over at each sign-in. ``confirmed``
    marks the device as confirmed (never unmarks it). ``known``: this browser's row, when the
    caller already read it in this request (saves reading it again). ``method``: how it signed
    in, for the devices page.
    """
    device_id = device_id_for_response(request=request, response=response)
    digest = device_digest(device_id)
    now = timezone.now()
    seen = {
        "last_seen": now,
        "ip_address": client_ip(request),
        "user_agent": client_user_agent(request),
        "signin_method": method,
        **({"confirmed": True} if confirmed else {}),
    }
    if known is not None and _touch(known, user=user, digest=digest, seen=seen):
        return known
    device, _ = KnownDevice.objects.update_or_create(
        user=user, device_digest=digest, defaults=seen, create_defaults={"first_seen": now, **seen}
    )
    return device


def _touch(known: KnownDevice, *, user: User, digest: str, seen: Mapping[str, object]) -> bool:
    # Only these columns, so a concurrent write to another (first_seen, confirmed) is never
    # undone. Keyed by account and digest as well as id: a wrong row handed in cannot confirm
    # another browser or account. 0 rows (forgotten meanwhile): the caller creates it afresh.
    if known.user_id != user.pk or known.device_digest != digest:
        return False
    rows = KnownDevice.objects.filter(pk=known.pk, user=user, device_digest=digest)
    if rows.update(**seen) == 0:
        return False
    for field, value in seen.items():
        setattr(known, field, value)
    return True


def _set_cookie(response: HttpResponse, device_id: str) -> None:
    # HttpOnly: page scripts (an XSS) cannot read the id and replay it from elsewhere.
    response.set_signed_cookie(
        cookie_name(),
        device_id,
        salt=_COOKIE_SALT,
        max_age=int(COOKIE_MAX_AGE.total_seconds()),
        path=_cookie_path(),
        secure=settings.BASE_URL_IS_HTTPS,
        httponly=True,
        samesite="Lax",
    )
