"""The new-device check: a sign-in with an app code or a recovery code from a browser the
account does not know waits for a link mailed to every verified address.

App codes and recovery codes can be phished; the mailbox is a second channel the phisher
usually lacks. PyPI does this too, but burns a recovery code on the blocked sign-in; here:

- the link completes the sign-in only in the browser that started it (its session holds the
  nonce whose SHA-256 the row stores), only once (``used_at``) and only for
  ``NEW_DEVICE_LINK_MAX_AGE`` seconds;
- a recovery code is remembered on the row and spent only when the link is used;
- opening the link shows a button (mail scanners follow links; they must not sign anyone in).

The token in the link is made at delivery (it is never stored) and names the row, signed.
"""

import hmac
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone

from relatch.accounts.models import User
from relatch.accounts.notices import verified_addresses
from relatch.audit.models import EventKind, Factor
from relatch.audit.services import record_event
from relatch.mfa.models import NewDeviceConfirmation, RecoveryCode
from relatch.mfa.notices import client_facts, factor_label
from relatch.mfa.recovery_codes.services import RecoveryCodeAlreadyUsedError, spend_recovery_code
from relatch.mfa.selfservice.services import cancel_on_trusted_signin
from relatch.notify.services import send_mail
from relatch.signin.newdevice import partial as partials
from relatch.signin.services import complete_signin
from relatch.web.client import client_ip, client_user_agent
from relatch.web.path_prefix import site_url

# The salt keeps the name of this module's first home: links already mailed stay valid.
_SALT = "relatch.mfa.newdevice.confirm"
LINK_BUILDER = "relatch.signin.newdevice.confirmation.confirmation_link"


REFUSALS = {
    "forged": "This link is not valid. Copy the whole link from the mail, or sign in again.",
    "expired": "This link has expired (it works for 10 minutes). Sign in again for a new one.",
    "used": "This link was already used. Each link signs in once; sign in again if you need to.",
    "other_browser": (
        "Open this link in the browser where you signed in. It only completes the sign-in "
        "there, so a link forwarded or intercepted elsewhere is worth nothing."
    ),
    "code_used": (
        "The recovery code of this sign-in was used or replaced meanwhile, so this link can no "
        "longer sign in. Sign in again."
    ),
}


class ConfirmationRefusedError(Exception):
    """The link cannot complete a sign-in here; ``message`` says why. Nothing was changed."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.message = REFUSALS[code]
        super().__init__(self.message)


@dataclass(frozen=True)
class ConfirmedSignin:
    """A completed new-device sign-in: who, with what, and where they wanted to go."""

    user: User
    factor: str
    next_url: str


@transaction.atomic
def start_confirmation(
    *,
    request: HttpRequest,
    user: User,
    browser_digest: str,
    factor: Factor,
    recovery_code: RecoveryCode | None = None,
) -> NewDeviceConfirmation:
    """Hold a sign-in that passed ``factor`` on an unknown device and mail the link to every
    verified address; a recovery code stays unspent until the link is used."""
    now = timezone.now()
    addresses = verified_addresses(user)  # the event counts exactly the addresses mailed
    confirmation = NewDeviceConfirmation.objects.create(
        user=user,
        browser_digest=browser_digest,
        factor=factor,
        recovery_code=recovery_code,
        ip_address=client_ip(request),
        user_agent=client_user_agent(request),
        created_at=now,
        expires_at=now + timedelta(seconds=settings.NEW_DEVICE_LINK_MAX_AGE),
    )
    record_event(
        user=user,
        kind=EventKind.NEW_DEVICE_CONFIRMATION_SENT,
        request=request,
        factor=factor,
        details={"sent_to": len(addresses)},
    )
    context = {
        **client_facts(request),
        "username": user.username,
        "factor_label": factor_label(factor),
        "max_age_minutes": settings.NEW_DEVICE_LINK_MAX_AGE // 60,
        "security_notice": True,
    }
    send_mail(
        to=addresses,
        template="newdevice_confirm",
        context=context,
        link_builder=LINK_BUILDER,
        link_args={"confirmation_id": confirmation.pk},
    )
    return confirmation


def make_confirmation_token(confirmation_id: int) -> str:
    return signing.dumps({"c": confirmation_id}, salt=_SALT)


def confirmation_link(*, confirmation_id: int) -> str:
    """Link builder for the newdevice_confirm mail (runs at delivery; the token is never
    stored)."""
    token = make_confirmation_token(confirmation_id)
    return site_url(reverse("newdevice:confirm", kwargs={"token": token}))


def pending_confirmation(*, request: HttpRequest, token: str) -> NewDeviceConfirmation:
    """The confirmation ``token`` names, if this browser may complete it now; changes nothing.
    Raises ConfirmationRefusedError."""
    return _usable(request, token, lock=False)


@transaction.atomic
def confirm_new_device(
    *, request: HttpRequest, response: HttpResponse, token: str
) -> ConfirmedSignin:
    """Complete the held sign-in in the browser that started it, once: spend the recovery code
    if that was the factor, sign in, mark this device known and confirmed. Raises
    ConfirmationRefusedError (nothing changed)."""
    confirmation = _usable(request, token, lock=True)
    user = confirmation.user
    if confirmation.factor == Factor.RECOVERY_CODE:
        _spend_held_code(request, confirmation)
    confirmation.used_at = timezone.now()
    confirmation.save(update_fields=["used_at"])
    next_url = partials.stored_next_url(request)
    partials.end_partial_signin(request)
    factor = Factor(confirmation.factor)
    complete_signin(
        request=request,
        response=response,
        user=user,
        factor=factor,
        confirm_device=True,
        details={"confirmed_by": "email_link"},
    )
    record_event(user=user, kind=EventKind.NEW_DEVICE_CONFIRMED, request=request, factor=factor)
    _cancel_waiting_recovery(request, user)
    return ConfirmedSignin(user=user, factor=factor, next_url=next_url)


def _cancel_waiting_recovery(request: HttpRequest, user: User) -> None:
    # The mailbox and a factor are both here: a recovery "because the mailbox is gone" is moot,
    # and if someone else started it, it must stop.
    cancel_on_trusted_signin(request=request, user=user, closed_by="new_device_confirmed")


def _spend_held_code(request: HttpRequest, confirmation: NewDeviceConfirmation) -> None:
    code = confirmation.recovery_code
    if code is None:  # the set was replaced meanwhile
        raise ConfirmationRefusedError("code_used")
    try:
        spend_recovery_code(request=request, user=confirmation.user, code=code)
    except RecoveryCodeAlreadyUsedError as exc:
        raise ConfirmationRefusedError("code_used") from exc


def _confirmation_id(token: str) -> int:
    try:
        data = signing.loads(token, salt=_SALT, max_age=settings.NEW_DEVICE_LINK_MAX_AGE)
    except signing.SignatureExpired as exc:
        raise ConfirmationRefusedError("expired") from exc
    except (signing.BadSignature, ValueError, UnicodeError) as exc:
        raise ConfirmationRefusedError("forged") from exc
    if not (isinstance(data, dict) and isinstance(data.get("c"), int)):
        raise ConfirmationRefusedError("forged")
    return int(data["c"])


def _usable(request: HttpRequest, token: str, *, lock: bool) -> NewDeviceConfirmation:
    rows = NewDeviceConfirmation.objects.select_related("user", "recovery_code")
    if lock:
        # Two clicks at once: the second waits, then finds the row used.
        rows = rows.select_for_update(of=("self",))
    confirmation = rows.filter(pk=_confirmation_id(token)).first()
    if confirmation is None or not confirmation.user.is_active:
        raise ConfirmationRefusedError("forged")
    if confirmation.used_at is not None:
        raise ConfirmationRefusedError("used")
    if confirmation.expires_at <= timezone.now():
        raise ConfirmationRefusedError("expired")
    digest = partials.session_browser_digest(request) or ""
    if not hmac.compare_digest(digest.encode(), confirmation.browser_digest.encode()):
        raise ConfirmationRefusedError("other_browser")
    return confirmation
