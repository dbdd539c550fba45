"""Helpers for the two-step sign-in tests: real factors, made through the factor services, and
a browser that goes through the sign-in pages."""

import hashlib
import html
import json
import re
from typing import Any

import pyotp
from django.contrib.sessions.backends.db import SessionStore
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory
from django.utils import timezone

from relatch.accounts.devices import cookie_name, device_id_from_request, remember_device
from relatch.accounts.models import User
from relatch.audit.models import EventKind, SecurityEvent
from relatch.mfa.models import TotpDevice
from tests.conftest import PASSWORD
from tests.mfa.soft_authenticator import SoftAuthenticator

LOGIN = "/account/login/"
SECOND_STEP = "/account/login/second-step/"
APP = "/account/login/second-step/app/"
KEY = "/account/login/second-step/key/"
CODE = "/account/login/second-step/recovery-code/"
CHECK_MAIL = "/account/login/check-mail/"
CONFIRM_PREFIX = "/account/login/confirm/"
START_RECOVERY = "/account/recovery/start/"
RECOVERY_STATUS = "/account/recovery/status/"
CANCEL_PREFIX = "/account/recovery/cancel/"
NEW_CODES = "/account/two-factor/recovery-codes/used/"
OPTIONS_RE = re.compile(
    r'<script id="webauthn-options" type="application/json">(.*?)</script>', re.S
)


def _request(session: SessionStore | None = None) -> HttpRequest:
    request = RequestFactory().post("/", REMOTE_ADDR="192.0.2.7")
    request.session = session or SessionStore()  # type: ignore[attr-defined]
    return request


def make_codes(user: User) -> list[str]:
    """A fresh set of recovery codes, confirmed as saved (entering one back spends nothing)."""
    from relatch.mfa.recovery_codes.services import confirm_saved_codes, generate_recovery_codes

    codes = generate_recovery_codes(request=None, user=user)
    confirm_saved_codes(request=None, user=user, code=codes[0])
    return codes


def enrol_app(user: User) -> str:
    """Enrol an authenticator app through the TOTP services; returns its secret."""
    from relatch.mfa.recovery_codes.services import has_confirmed_codes
    from relatch.mfa.totp.services import confirm_enrolment, start_enrolment

    if not has_confirmed_codes(user):
        make_codes(user)
    request = _request()
    pending = start_enrolment(request, user)
    confirm_enrolment(request=request, user=user, code=pyotp.TOTP(pending.secret).now())
    return pending.secret


def app_code(user: User, secret: str) -> str:
    """The app's code now. Each code is accepted once (replay protection); the step record is
    moved back so the test need not wait 30 s for the next code."""
    TotpDevice.objects.filter(user=user).update(last_used_step=0)
    return pyotp.TOTP(secret).now()


def wrong_app_code(secret: str) -> str:
    """A well-formed code that matches no step within five minutes (so not a clock-skew hint)."""
    totp = pyotp.TOTP(secret)
    now = timezone.now().timestamp()
    near = {totp.at(now + 30 * steps) for steps in range(-12, 13)}
    return next(c for c in (f"{n:06d}" for n in range(0, 10**6, 7919)) if c not in near)


def register_key(
    user: User, *, discoverable: bool = False, label: str = "Blue key"
) -> SoftAuthenticator:
    """A security key registered through the security-key services; ``discoverable`` makes
    it a passkey (it keeps the account's userHandle and answers without allowCredentials)."""
    from relatch.mfa.recovery_codes.services import has_confirmed_codes
    from relatch.mfa.webauthn import services

    if not has_confirmed_codes(user):
        make_codes(user)
    key = SoftAuthenticator(discoverable=discoverable)
    session = SessionStore()
    session.create()
    options = services.registration_options(request=_request(session), user=user)
    session.save()
    services.register_key(
        request=_request(SessionStore(session_key=session.session_key)),
        user=user,
        label=label,
        credential_json=key.register(options),
    )
    return key


def cookies_request(client: Client) -> HttpRequest:
    request = RequestFactory().get("/")
    request.COOKIES = {name: morsel.value for name, morsel in client.cookies.items()}
    return request


def device_id_of(client: Client) -> str | None:
    return device_id_from_request(cookies_request(client))


def device_digest_of(client: Client) -> str | None:
    device_id = device_id_of(client)
    return hashlib.sha256(device_id.encode()).hexdigest() if device_id else None


def trust_browser(client: Client, user: User) -> None:
    """Make ``client`` a device ``user`` knows, as an earlier sign-in would have."""
    response = HttpResponse()
    remember_device(request=cookies_request(client), response=response, user=user)
    client.cookies[cookie_name()] = response.cookies[cookie_name()].value


def password_step(client: Client, identifier: str = "alice", password: str = PASSWORD, **data: Any):
    return client.post(LOGIN, {"identifier": identifier, "password": password, **data})


def signed_in_user_id(client: Client) -> str | None:
    return client.session.get("_auth_user_id")


def events(user: User, kind: EventKind, factor: str | None = None) -> list[SecurityEvent]:
    rows = SecurityEvent.objects.filter(user=user, kind=kind)
    if factor is not None:
        rows = rows.filter(factor=factor)
    return list(rows.order_by("id"))


def page_text(response: Any) -> str:
    return html.unescape(response.content.decode())


def options_on(response: Any) -> dict[str, Any]:
    found = OPTIONS_RE.search(response.content.decode())
    assert found, "no webauthn-options on the page"
    return json.loads(found.group(1))


def key_answer(client: Client, key: SoftAuthenticator) -> str:
    """What webauthn.js posts after the key answered the second-step page's options (the key's
    form asked for: the page shows one method at a time)."""
    return key.authenticate(options_on(client.get(f"{SECOND_STEP}?method=webauthn")))
