"""Self-service recovery: the password and a second factor are here, the mailbox is gone.

PyPI's new-device check leaves such a user stuck (and burns their recovery code). Here the user
says "I no longer have access to my email" on the check-your-mail page and a recovery starts
(DESIGN §2):

- it waits ``settings.SELF_RECOVERY_WAIT`` (72 h by default), a state with an end time that the
  code enforces; the start is announced to every verified address with a one-click cancel link;
- it belongs to the browser that started it (its device cookie's digest): after the wait, the
  password and an app code or recovery code from THAT browser sign in without the email check,
  the browser becomes a confirmed known device, and the user goes to add a new address;
- any sign-in with a second factor from a device the account knows (or with a security key,
  or confirmed through the mailed link) cancels it: the owner is evidently not locked out, and
  if someone else started it, it stops;
- one waiting recovery per account (a database constraint). Starting one from another browser
  replaces the older (announced): a user who lost the first browser's cookies is not stuck, and
  the clock starts over, so a replacement never shortens the wait.
"""

from datetime import UTC, datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from relatch.accounts.devices import current_device_digest, device_digest, device_id_for_response
from relatch.accounts.freeze import AccountFrozenError, refuse_if_frozen
from relatch.accounts.models import User
from relatch.accounts.notices import announce_to_account, verified_addresses
from relatch.audit.models import EventKind, Factor
from relatch.audit.services import record_event
from relatch.mfa.models import NewDeviceConfirmation, SelfServiceRecovery
from relatch.mfa.notices import client_facts, factor_label
from relatch.mfa.selfservice import tokens
from relatch.notify.services import send_mail
from relatch.web.client import client_ip, client_user_agent

State = SelfServiceRecovery.State
STARTING_FACTORS = (Factor.TOTP, Factor.RECOVERY_CODE)
CLOSED_BY_WORDS = {
    "owner_link": "with the cancel link from our mail",
    "known_device_signin": "by a sign-in with a second factor from a device the account knows",
    "security_key_signin": "by a sign-in with a security key",
    "new_device_confirmed": "by a sign-in confirmed through the link we mailed",
    "replaced": "because a new recovery was started from another browser",
}


class SelfRecoveryError(Exception):
    """The recovery cannot be started or cancelled; ``message`` says why. Nothing changed."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _refuse_if_frozen(user: User, action: str) -> None:
    """A frozen account recovers through staff only: a hijacker who holds the password and a
    factor must not wait out the mailbox check and get a trusted browser (DESIGN §5)."""
    try:
        refuse_if_frozen(user=user, action=action)
    except AccountFrozenError as frozen:
        raise SelfRecoveryError(frozen.message, status=403) from frozen


def when(at: datetime) -> str:
    """A time for a mail's context (JSON-safe, unambiguous)."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def waiting_recovery(user: User) -> SelfServiceRecovery | None:
    return SelfServiceRecovery.objects.filter(user=user, state=State.WAITING).first()


def waiting_recovery_for_device(*, request: HttpRequest, user: User) -> SelfServiceRecovery | None:
    """The account's waiting recovery if THIS browser started it."""
    return started_by_this_browser(request=request, recovery=waiting_recovery(user))


def started_by_this_browser(
    *, request: HttpRequest, recovery: SelfServiceRecovery | None
) -> SelfServiceRecovery | None:
    """``recovery`` (an account's waiting one, already read) if THIS browser started it."""
    digest = current_device_digest(request)
    if digest is None or recovery is None or recovery.device_digest != digest:
        return None
    return recovery


def browser_recoveries(request: HttpRequest) -> list[SelfServiceRecovery]:
    """The waiting recoveries this browser started (for its status page)."""
    digest = current_device_digest(request)
    if digest is None:
        return []
    rows = SelfServiceRecovery.objects.filter(device_digest=digest, state=State.WAITING)
    return list(rows.select_related("user"))


@transaction.atomic
def start_self_recovery(
    *,
    request: HttpRequest,
    response: HttpResponse,
    user: User,
    passed_factor: str,
    confirmation_id: int | None,
) -> SelfServiceRecovery:
    """Start the wait for ``user``, whose password and ``passed_factor`` were just right in this
    browser (a sign-in held for the mailed link ``confirmation_id``), bound to this browser (a
    device cookie is set on ``response`` if it has none). A recovery code is not spent.
    Sending the form twice starts one recovery."""
    if passed_factor not in STARTING_FACTORS:
        raise SelfRecoveryError(
            "First sign in with your password and an app code or a recovery code."
        )
    user = User.objects.select_for_update().get(pk=user.pk)
    _refuse_if_frozen(user, "Starting a self-service recovery")
    _require_code_unspent(passed_factor, confirmation_id)
    digest = device_digest(device_id_for_response(request=request, response=response))
    existing = waiting_recovery(user)
    if existing is not None and existing.device_digest == digest:
        return existing
    if existing is not None:
        _close(request, existing, state=State.CANCELLED, closed_by="replaced")
    try:
        with transaction.atomic():
            recovery = _create(request, user, digest, passed_factor)
    except IntegrityError as exc:  # another start won the race for the one waiting row
        raise SelfRecoveryError("A recovery was just started for this account.", 409) from exc
    _announce_start(request, user, recovery, replaced=existing is not None)
    return recovery


def _require_code_unspent(passed_factor: str, confirmation_id: int | None) -> None:
    if passed_factor != Factor.RECOVERY_CODE or confirmation_id is None:
        return
    held = NewDeviceConfirmation.objects.filter(pk=confirmation_id).first()
    code = held.recovery_code if held is not None else None
    if code is None or code.used_at is not None:
        raise SelfRecoveryError(
            "The recovery code you entered was used or replaced meanwhile. Sign in again."
        )


def _create(request: HttpRequest, user: User, digest: str, factor: str) -> SelfServiceRecovery:
    now = timezone.now()
    recovery = SelfServiceRecovery.objects.create(
        user=user,
        device_digest=digest,
        factor=factor,
        started_at=now,
        ends_at=now + settings.SELF_RECOVERY_WAIT,
        ip_address=client_ip(request),
        user_agent=client_user_agent(request),
    )
    record_event(
        user=user,
        kind=EventKind.SELF_RECOVERY_STARTED,
        request=request,
        factor=factor,
        details={"ends_at": recovery.ends_at.isoformat()},
    )
    return recovery


def _announce_start(
    request: HttpRequest, user: User, recovery: SelfServiceRecovery, *, replaced: bool
) -> None:
    context = {
        **client_facts(request),
        "username": user.username,
        "factor_label": factor_label(recovery.factor),
        "ends_at": when(recovery.ends_at),
        "wait_hours": int(settings.SELF_RECOVERY_WAIT.total_seconds() // 3600),
        "replaced": replaced,
        "security_notice": True,
    }
    send_mail(
        to=verified_addresses(user),
        template="selfrecovery_started",
        context=context,
        link_builder=tokens.LINK_BUILDER,
        link_args={"recovery_id": recovery.pk},
    )


def recovery_for_cancel_link(*, token: str) -> SelfServiceRecovery:
    """The waiting recovery a cancel link names (changes nothing); raises SelfRecoveryError."""
    return _from_link(token, lock=False)


@transaction.atomic
def cancel_by_owner_link(*, request: HttpRequest, token: str) -> SelfServiceRecovery:
    """ "This wasn't me": cancel the recovery the mailed link names, once."""
    recovery = _from_link(token, lock=True)
    _close(request, recovery, state=State.CANCELLED, closed_by="owner_link")
    return recovery


def _from_link(token: str, *, lock: bool) -> SelfServiceRecovery:
    try:
        recovery_id = tokens.read_cancel_token(token)
    except tokens.CancelTokenError as exc:
        raise SelfRecoveryError(
            "This cancel link is not valid. Copy the whole link from the mail."
        ) from exc
    rows = SelfServiceRecovery.objects.select_related("user")
    recovery = (rows.select_for_update(of=("self",)) if lock else rows).filter(pk=recovery_id)
    found = recovery.first()
    if found is None:
        raise SelfRecoveryError("This cancel link is not valid. Copy the whole link from the mail.")
    if found.state != State.WAITING:
        raise SelfRecoveryError(
            f"This recovery is already {found.get_state_display().lower()}: there is nothing "
            "left to cancel.",
            status=409,
        )
    return found


@transaction.atomic
def cancel_on_trusted_signin(
    *, request: HttpRequest, user: User, closed_by: str
) -> SelfServiceRecovery | None:
    """Cancel the account's waiting recovery because the owner just signed in with a second
    factor in a way the recovery was meant to replace; None when none was waiting."""
    recovery = (
        SelfServiceRecovery.objects.select_for_update()
        .filter(user=user, state=State.WAITING)
        .first()
    )
    if recovery is None:
        return None
    _close(request, recovery, state=State.CANCELLED, closed_by=closed_by)
    return recovery


@transaction.atomic
def complete_self_recovery(*, request: HttpRequest, recovery: SelfServiceRecovery) -> None:
    """Close a recovery whose wait is over (the caller signs the browser in, confirmed).

    Raises SelfRecoveryError when it still waits or the account is frozen meanwhile.
    """
    _refuse_if_frozen(recovery.user, "Completing a self-service recovery")
    if recovery.state != State.WAITING or recovery.ends_at > timezone.now():
        raise SelfRecoveryError("This recovery is still waiting.", status=409)
    recovery.state = State.COMPLETED
    recovery.closed_at = timezone.now()
    recovery.closed_by = "completed"
    recovery.save(update_fields=["state", "closed_at", "closed_by"])
    record_event(
        user=recovery.user,
        kind=EventKind.SELF_RECOVERY_COMPLETED,
        request=request,
        factor=recovery.factor,
    )
    announce_to_account(
        user=recovery.user,
        template="selfrecovery_completed",
        context={**client_facts(request), "started_at": when(recovery.started_at)},
    )


def _close(
    request: HttpRequest, recovery: SelfServiceRecovery, *, state: str, closed_by: str
) -> None:
    recovery.state = state
    recovery.closed_at = timezone.now()
    recovery.closed_by = closed_by
    recovery.save(update_fields=["state", "closed_at", "closed_by"])
    record_event(
        user=recovery.user,
        kind=EventKind.SELF_RECOVERY_CANCELLED,
        request=request,
        details={"closed_by": closed_by},
    )
    announce_to_account(
        user=recovery.user,
        template="selfrecovery_cancelled",
        context={
            "started_at": when(recovery.started_at),
            "closed_by": closed_by,
            "how": CLOSED_BY_WORDS.get(closed_by, ""),
        },
    )
