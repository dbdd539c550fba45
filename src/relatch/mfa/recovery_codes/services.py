"""Recovery codes: make a set, check a code, spend it, confirm the set was saved.

The sign-in flow calls ``find_unused_code`` then ``spend_recovery_code``; the enrolment pages of
the authenticator app and security keys call ``saved_codes_required`` first. Every change is a
SecurityEvent and, where NIST asks, a notice to every verified address (N2, N9).
"""

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

from relatch.accounts import ratelimit
from relatch.accounts.freeze import AccountFrozenError, refuse_if_frozen
from relatch.accounts.models import User
from relatch.accounts.notices import announce_to_account
from relatch.audit.models import EventKind, Factor
from relatch.audit.services import record_event
from relatch.mfa.models import RecoveryCode, RecoveryCodeSet
from relatch.mfa.policy import has_second_factor
from relatch.mfa.recovery_codes import primitive

# Codes are 80-bit secrets, so guessing is hopeless; the limit still caps how much Argon2 work
# a stolen session can make the server do on the confirm page (NIST N2/N24 "throttled").
CONFIRM_FAILURE_LIMIT = "10/hour"
# How few unused codes make the pages ask for a new set.
LOW_CODE_COUNT = 2
# Where saved_codes_required keeps the page to return to, so it survives a re-authentication.
NEXT_SESSION_KEY = "relatch_recovery_codes_next"


class RecoveryCodeError(Exception):
    """A refused action on recovery codes; ``message`` says why, plainly. Nothing changed."""

    status = 400
    default_message = "That did not work. Nothing was changed."

    def __init__(self, message: str = "") -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class RecoveryCodeAlreadyUsedError(RecoveryCodeError):
    default_message = "That recovery code was already used, or was replaced by a new set."


class WrongRecoveryCodeError(RecoveryCodeError):
    default_message = "That is not one of your unused recovery codes. Nothing was changed."


class NoRecoveryCodesError(RecoveryCodeError):
    default_message = "You have no recovery codes yet. Make a set first."


class AlreadyConfirmedError(RecoveryCodeError):
    default_message = "You already confirmed that you saved these codes. Nothing was changed."


class ConfirmThrottledError(RecoveryCodeError):
    status = 429
    default_message = (
        "Too many wrong codes in the last hour. Wait a while, or make a new set of codes."
    )


class FrozenAccountError(RecoveryCodeError):
    """Refused because the account is frozen (relatch.accounts.freeze). Nothing changed."""

    status = 403


def _refuse_if_frozen(user: User, action: str) -> None:
    """While the account is frozen its codes stay as they are: a hijacker holding a session
    must not replace the owner's codes with a set only they have seen (DESIGN §5)."""
    try:
        refuse_if_frozen(user=user, action=action)
    except AccountFrozenError as frozen:
        raise FrozenAccountError(frozen.message) from frozen


@dataclass(frozen=True)
class CodeSetStatus:
    """What the recovery-codes page says about the account's current set."""

    created_at: datetime
    confirmed_at: datetime | None
    unused: int
    total: int

    @property
    def running_low(self) -> bool:
        return self.unused <= LOW_CODE_COUNT


def generate_recovery_codes(*, request: HttpRequest | None, user: User) -> list[str]:
    """Make a new set of 8 codes, replacing any set the account had (its codes stop working).

    Returns the codes as shown to people; they are stored only as hashes, so this is the one
    time they exist in clear. Records RECOVERY_CODES_GENERATED and tells every verified address
    (NIST N2: issuing replacement codes triggers a notification). Raises FrozenAccountError
    for a frozen account.
    """
    codes = primitive.new_code_set()
    # Hashed before the transaction opens: eight Argon2 hashes take a moment, and holding the
    # database's write lock meanwhile would stall every other request.
    hashed = [(code.identifier, primitive.hash_secret(code.secret)) for code in codes]
    _replace_code_set(request=request, user=user, hashed=hashed)
    return [code.formatted for code in codes]


@transaction.atomic
def _replace_code_set(
    *, request: HttpRequest | None, user: User, hashed: list[tuple[str, str]]
) -> RecoveryCodeSet:
    _refuse_if_frozen(user, "Making new recovery codes")
    deleted, _ = RecoveryCodeSet.objects.filter(user=user).delete()
    code_set = RecoveryCodeSet.objects.create(user=user)
    RecoveryCode.objects.bulk_create(
        RecoveryCode(code_set=code_set, identifier=identifier, code_hash=code_hash)
        for identifier, code_hash in hashed
    )
    replaced = deleted > 0
    record_event(
        user=user,
        kind=EventKind.RECOVERY_CODES_GENERATED,
        request=request,
        details={"codes": len(hashed), "replaced": replaced},
    )
    announce_to_account(
        user=user,
        template="recovery_codes_generated",
        context={"count": len(hashed), "replaced": replaced},
    )
    return code_set


def find_unused_code(*, user: User, code: str) -> RecoveryCode | None:
    """The unused code of ``user`` that ``code`` spells, or None. Changes nothing.

    Costs exactly one Argon2 verification in every case: the identifier picks the one row to
    check, and a missing row, a used code or text that is no code is checked against a dummy
    hash instead, so the time taken does not say which of these it was.
    """
    try:
        parsed = primitive.parse_code(code)
    except primitive.MalformedCodeError:
        primitive.dummy_verify()
        return None
    row = RecoveryCode.objects.filter(
        code_set__user=user, identifier=parsed.identifier, used_at__isnull=True
    ).first()
    if row is None:
        primitive.dummy_verify()
        return None
    return row if primitive.verify_secret(parsed.secret, row.code_hash) else None


@transaction.atomic
def spend_recovery_code(*, request: HttpRequest | None, user: User, code: RecoveryCode) -> int:
    """Mark ``code`` used, once (NIST N22, ASVS 6.5.1); returns how many unused codes remain.

    Raises RecoveryCodeAlreadyUsedError when it was already used (two sign-ins racing with the
    same code: one wins), replaced, or is not ``user``'s. Records RECOVERY_CODE_USED and tells
    every verified address, with a link to make a new set (NIST N2).
    """
    now = timezone.now()
    spent = RecoveryCode.objects.filter(
        pk=code.pk, code_set__user=user, used_at__isnull=True
    ).update(used_at=now)
    if spent != 1:
        raise RecoveryCodeAlreadyUsedError()
    code.used_at = now
    left = unused_code_count(user)
    record_event(
        user=user,
        kind=EventKind.RECOVERY_CODE_USED,
        request=request,
        factor=Factor.RECOVERY_CODE,
        details={"identifier": code.identifier, "codes_left": left},
    )
    announce_to_account(
        user=user,
        template="recovery_code_used",
        context={"identifier": code.identifier, "codes_left": left},
    )
    return left


def confirm_saved_codes(*, request: HttpRequest | None, user: User, code: str) -> None:
    """Prove the set was saved by entering one code back. The code is NOT spent.

    Raises NoRecoveryCodesError, AlreadyConfirmedError (a double submit),
    ConfirmThrottledError, WrongRecoveryCodeError, or FrozenAccountError; nothing changes then.
    """
    code_set = RecoveryCodeSet.objects.filter(user=user).first()
    if code_set is None:
        raise NoRecoveryCodesError()
    if code_set.confirmed_at is not None:
        raise AlreadyConfirmedError()
    key = str(user.pk)
    if not ratelimit.allows(scope="recovery-confirm", key=key, limit=CONFIRM_FAILURE_LIMIT):
        raise ConfirmThrottledError()
    # Checked before the transaction opens: on SQLite every transaction takes the write lock
    # at once, and it should not be held through an Argon2 verification.
    if find_unused_code(user=user, code=code) is None:
        ratelimit.hit(scope="recovery-confirm", key=key, limit=CONFIRM_FAILURE_LIMIT)
        raise WrongRecoveryCodeError()
    _mark_confirmed(request=request, user=user, code_set=code_set)


@transaction.atomic
def _mark_confirmed(
    *, request: HttpRequest | None, user: User, code_set: RecoveryCodeSet
) -> None:
    _refuse_if_frozen(user, "Confirming recovery codes")
    # Conditional: of two submits racing, only one confirms (and records the event).
    confirmed = RecoveryCodeSet.objects.filter(pk=code_set.pk, confirmed_at__isnull=True).update(
        confirmed_at=timezone.now()
    )
    if confirmed != 1:
        raise AlreadyConfirmedError()
    record_event(user=user, kind=EventKind.RECOVERY_CODES_CONFIRMED, request=request)


def unused_code_count(user: User) -> int:
    """How many codes of the account's current set are still unused (0 without a set)."""
    return RecoveryCode.objects.filter(code_set__user=user, used_at__isnull=True).count()


def has_confirmed_codes(user: User) -> bool:
    """True when the account's set was confirmed as saved and still has an unused code."""
    return RecoveryCodeSet.objects.filter(
        user=user, confirmed_at__isnull=False, codes__used_at__isnull=True
    ).exists()


def code_set_status(user: User) -> CodeSetStatus | None:
    """The current set's dates and counts for the page, or None when there is no set."""
    code_set = RecoveryCodeSet.objects.filter(user=user).first()
    if code_set is None:
        return None
    codes = list(code_set.codes.values_list("used_at", flat=True))
    return CodeSetStatus(
        created_at=code_set.created_at,
        confirmed_at=code_set.confirmed_at,
        unused=sum(1 for used_at in codes if used_at is None),
        total=len(codes),
    )


def saved_codes_required(request: HttpRequest, next_url: str) -> HttpResponse | None:
    """The gate before enrolling a FIRST second factor (issue 3 §3).

    None when the user may go on: they have a confirmed set with an unused code, or already
    have an authenticator app or security key (the gate is for the first one). Otherwise a
    redirect to the recovery-codes page, which explains why and, once a set is confirmed,
    returns to ``next_url`` (a path on this site; anything else is ignored).
    """
    user = request.user
    assert isinstance(user, User)
    if has_confirmed_codes(user) or has_second_factor(user):
        return None
    if url_has_allowed_host_and_scheme(next_url, allowed_hosts=None) and next_url.startswith("/"):
        request.session[NEXT_SESSION_KEY] = next_url
    return redirect("recovery_codes:manage")
