"""Signing in with a passkey alone, without a password (issue 3 §2).

A discoverable credential that verified its user (PIN or biometric) is two factors in one:
something held and something known or inherent, and phishing-resistant (NIST N32). So:

    outcome = sign_in_with_passkey(request=..., response=..., credential_json=posted)

names the account from the answer (the credential, and its userHandle), and signs it in with
``complete_signin(factor=WEBAUTHN)``: no new-device check (the origin is checked, so a phishing
site gets nothing) and, as with any security-key sign-in, a waiting self-service recovery of
that account is cancelled (its owner evidently holds a factor).

Two ways in, one check: the passkey page's button, and a passkey chosen from the first sign-in
page's username suggestions (WebAuthn conditional mediation: passkey-autofill.js asks
``signin:passkey_options`` for this session's challenge, then posts to the passkey page).

Limits (``relatch.mfa.throttling``, point 7): failures are counted per client IP; when the
answer names a registered credential, also on that account's security-key factor, which is
then refused while that factor is throttled. Events: SIGNIN_SUCCEEDED / SIGNIN_FAILED /
SIGNIN_THROTTLED with factor "webauthn" and ``{"passkey": true}``, on the account when known.
"""

from dataclasses import dataclass

from django.db import transaction
from django.http import HttpRequest, HttpResponse

from relatch.accounts.models import User
from relatch.audit.models import EventKind, Factor
from relatch.audit.services import record_event
from relatch.mfa import throttling
from relatch.mfa.models import WebAuthnCredential
from relatch.mfa.webauthn import ceremony
from relatch.mfa.webauthn.errors import WebAuthnError
from relatch.mfa.webauthn.services import verify_authentication
from relatch.signin.newdevice.partial import end_partial_signin
from relatch.signin.services import complete_signin
from relatch.web.client import client_ip

_DETAILS: dict[str, str | bool] = {"passkey": True}


@dataclass(frozen=True)
class PasskeyOutcome:
    """``user`` when the passkey signed in; otherwise why not, for the sign-in page."""

    user: User | None
    message: str = ""
    status: int = 200


@transaction.atomic
def sign_in_with_passkey(
    *, request: HttpRequest, response: HttpResponse, credential_json: str
) -> PasskeyOutcome:
    """Sign in the account whose passkey answered this session's passwordless challenge."""
    ip = client_ip(request)
    if throttle := throttling.ip_throttle(factor=throttling.PASSKEY, ip=ip):
        return PasskeyOutcome(user=None, message=throttle.message, status=429)
    try:
        named = _named_account(credential_json)
    except WebAuthnError as error:  # not an answer from a key at all: not an attempt
        return PasskeyOutcome(user=None, message=error.message, status=400)
    if named is not None and (refusal := _account_throttled(request, named, ip)):
        return refusal
    try:
        key = verify_authentication(request=request, user=None, credential_json=credential_json)
    except WebAuthnError as error:
        _count_failure(request, named, ip, reason=error.reason)
        return PasskeyOutcome(user=None, message=error.message)
    complete_signin(
        request=request, response=response, user=key.user, factor=Factor.WEBAUTHN, details=_DETAILS
    )
    # A password typed earlier in this browser (a half-done sign-in) is over too.
    end_partial_signin(request)
    return PasskeyOutcome(user=key.user)


def _named_account(credential_json: str) -> User | None:
    """The account of the registered credential the answer names, locked (its attempts are
    judged one at a time); None when it names none. Nothing is verified yet."""
    data = ceremony.parse_credential_json(credential_json)
    owner_id = (
        WebAuthnCredential.objects.filter(credential_id=data["id"])
        .values_list("user_id", flat=True)
        .first()
    )
    if owner_id is None:
        return None
    return User.objects.select_for_update().filter(pk=owner_id).first()


def _account_throttled(request: HttpRequest, user: User, ip: str | None) -> PasskeyOutcome | None:
    throttle = throttling.factor_throttle(user=user, factor=Factor.WEBAUTHN, ip=ip)
    if throttle is None:
        return None
    record_event(
        user=user,
        kind=EventKind.SIGNIN_THROTTLED,
        request=request,
        factor=Factor.WEBAUTHN,
        details={**_DETAILS, "reason": str(throttle.reason), "during": "passkey"},
    )
    return PasskeyOutcome(user=None, message=throttle.message, status=429)


def _count_failure(request: HttpRequest, user: User | None, ip: str | None, *, reason: str) -> None:
    throttling.count_ip_failure(factor=throttling.PASSKEY, ip=ip)
    if user is not None:  # the SIGNIN_FAILED event is what the account's factor limit counts
        record_event(
            user=user,
            kind=EventKind.SIGNIN_FAILED,
            request=request,
            factor=Factor.WEBAUTHN,
            details={**_DETAILS, "reason": reason},
        )
