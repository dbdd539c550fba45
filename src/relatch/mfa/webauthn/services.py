"""Security keys (WebAuthn): registering, renaming and removing them, and using them to sign in.

Registering, renaming and removing a key are sensitive changes: the views ask for a recent
re-authentication (NIST N13, ASVS 7.5.1), and every change is a SecurityEvent (NIST N15) and a
notice to every verified address (NIST N14, ASVS 6.3.7).

Signing in with a key (for the two-step sign-in, and for passkeys without a password):

    options = authentication_options(request=request, user=user)    # on the page, as JSON
    key = verify_authentication(request=request, user=user, credential_json=posted)

The challenge lives in the session that asked for it, is spent before anything is verified and
expires after a few minutes, so an answer works once, in that browser only (ASVS 6.6.2).
"""

import unicodedata
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from webauthn.helpers import base64url_to_bytes

from relatch.accounts.freeze import AccountFrozenError, refuse_if_frozen
from relatch.accounts.models import User
from relatch.accounts.notices import announce_to_account
from relatch.audit.models import EventKind
from relatch.audit.services import record_event
from relatch.mfa.models import WebAuthnCredential
from relatch.mfa.policy import has_second_factor, has_totp, refusal_to_remove_factor
from relatch.mfa.reminders import schedule_factor_reminder
from relatch.mfa.webauthn import ceremony
from relatch.mfa.webauthn.challenges import Purpose, issue_challenge, take_challenge
from relatch.mfa.webauthn.errors import WebAuthnError
from relatch.mfa.webauthn.relying_party import user_handle

__all__ = [
    "MAX_KEYS_PER_ACCOUNT", "MAX_LABEL_LENGTH", "WebAuthnError", "authentication_options",
    "clean_label", "register_key", "registration_options", "remove_key", "rename_key",
    "verify_authentication",
]

MAX_LABEL_LENGTH = 64
MAX_KEYS_PER_ACCOUNT = 20

UNKNOWN_KEY = "That security key is not registered to your account."
UNKNOWN_PASSKEY = "That passkey is not registered with Relatch."
PASSKEY_WITHOUT_ACCOUNT = (
    "This passkey did not say which account it belongs to, so it cannot sign in alone. "
    "Sign in with your password, then use the key."
)
CLONED_KEY = (
    "This security key's use counter went backwards, which can mean the key was copied. "
    "It was refused. If you still hold the key, sign in another way and check your keys."
)


# --- signing in ------------------------------------------------------------------------------


def authentication_options(*, request: HttpRequest, user: User | None) -> dict[str, Any]:
    """Options for navigator.credentials.get(), JSON-safe, for ``{{ options|json_script }}``.

    With a ``user``, the browser may use that account's keys; with None any passkey of this
    site may answer, and the answer names its account. A new challenge replaces the old one.
    """
    challenge = issue_challenge(
        request, purpose=Purpose.AUTHENTICATE, user_pk=user.pk if user else None
    )
    allowed = list(user.webauthn_credentials.all()) if user is not None else []
    return ceremony.request_options(
        challenge=challenge, allowed=allowed, require_verification=user is None
    )


@transaction.atomic
def verify_authentication(
    *, request: HttpRequest, user: User | None, credential_json: str
) -> WebAuthnCredential:
    """The key that signed this session's challenge, or WebAuthnError (``.message``).

    With ``user`` the key must be one of that account's; with None the key picks the (active)
    account, and must have verified its user (PIN or biometric), since no password came first.
    Writes no SecurityEvent (the sign-in flow does); updates sign_count and last_used_at.
    """
    challenge = take_challenge(
        request, purpose=Purpose.AUTHENTICATE, user_pk=user.pk if user else None
    )
    data = ceremony.parse_credential_json(credential_json)
    key = _registered_key(data["id"], user)
    if user is None:
        _require_account_handle(data, key)
    new_count = ceremony.verify_assertion(
        data=data, challenge=challenge, key=key, require_verification=user is None
    )
    # A key with a counter counts up on every use; a count that does not grow means two
    # devices share the secret: a copied key (WebAuthn §6.1.1).
    if key.sign_count > 0 and new_count <= key.sign_count:
        raise WebAuthnError(CLONED_KEY, reason="cloned")
    key.sign_count = new_count
    key.last_used_at = timezone.now()
    key.save(update_fields=["sign_count", "last_used_at"])
    return key


def _require_account_handle(data: dict[str, Any], key: WebAuthnCredential) -> None:
    """WebAuthn §7.2 step 6: when no account was named first, the passkey must say whose it
    is (its userHandle) and that must be the account the credential is registered to."""
    response = data.get("response")
    sent = response.get("userHandle") if isinstance(response, dict) else None
    try:
        handle = base64url_to_bytes(sent) if isinstance(sent, str) and sent else b""
    except ValueError:
        handle = b""
    if not constant_time_compare(handle, user_handle(key.user_id)):
        raise WebAuthnError(PASSKEY_WITHOUT_ACCOUNT, reason="invalid")


def _registered_key(credential_id: str, user: User | None) -> WebAuthnCredential:
    # Locked: two sign-ins with the same key cannot both pass the counter check.
    keys = WebAuthnCredential.objects.select_for_update().select_related("user")
    if user is not None:
        key = keys.filter(credential_id=credential_id, user=user).first()
        if key is None:
            raise WebAuthnError(UNKNOWN_KEY, reason="unknown_credential")
        return key
    key = keys.filter(credential_id=credential_id, user__is_active=True).first()
    if key is None:
        raise WebAuthnError(UNKNOWN_PASSKEY, reason="unknown_credential")
    return key


# --- registering ------------------------------------------------------------------------------


def registration_options(*, request: HttpRequest, user: User) -> dict[str, Any]:
    """Options for navigator.credentials.create(), JSON-safe; the challenge stays server side."""
    challenge = issue_challenge(request, purpose=Purpose.REGISTER, user_pk=user.pk)
    existing = list(user.webauthn_credentials.all())
    return ceremony.creation_options(user=user, challenge=challenge, existing=existing)


def clean_label(label: str) -> str:
    """The label as stored (spaces collapsed), or WebAuthnError saying what is wrong with it."""
    label = " ".join(label.split())
    if not label:
        raise WebAuthnError("Give the key a name, such as “blue YubiKey”.", reason="label")
    if len(label) > MAX_LABEL_LENGTH:
        raise WebAuthnError(
            f"A key's name has at most {MAX_LABEL_LENGTH} characters.", reason="label"
        )
    if any(unicodedata.category(ch).startswith("C") for ch in label):
        raise WebAuthnError("A key's name cannot contain control characters.", reason="label")
    return label


@transaction.atomic
def register_key(
    *, request: HttpRequest, user: User, label: str, credential_json: str
) -> WebAuthnCredential:
    """Add the key that answered this session's registration challenge, named ``label``."""
    challenge = take_challenge(request, purpose=Purpose.REGISTER, user_pk=user.pk)
    label = clean_label(label)
    _lock(user)
    _refuse_if_frozen(user, "Adding a security key")
    _require_free_label(user, label)
    _require_room(user)
    data = ceremony.parse_credential_json(credential_json)
    new_key = ceremony.verify_new_key(data=data, challenge=challenge)
    first_factor = not has_second_factor(user)
    key = _store(user, label, new_key)
    record_event(
        user=user, kind=EventKind.WEBAUTHN_ADDED, request=request,
        details={"label": key.label, "key_id": key.pk, "passkey": key.discoverable},
    )
    announce_to_account(user=user, template="webauthn_added", context={"label": key.label})
    if first_factor:
        schedule_factor_reminder(user=user)
    return key


def _require_room(user: User) -> None:
    if user.webauthn_credentials.count() >= MAX_KEYS_PER_ACCOUNT:
        raise WebAuthnError(
            f"An account has at most {MAX_KEYS_PER_ACCOUNT} security keys. Remove one first.",
            reason="too_many",
        )


def _refuse_if_frozen(user: User, action: str) -> None:
    """While the account is frozen its keys stay as they are: a hijacker holding a session
    can neither add a key of theirs nor remove or rename the owner's (DESIGN §5)."""
    try:
        refuse_if_frozen(user=user, action=action)
    except AccountFrozenError as frozen:
        raise WebAuthnError(frozen.message, reason="frozen") from frozen


def _lock(user: User) -> None:
    """Serialize one account's key changes: two submits cannot both pass a check (a free
    label, "not the last factor") that only one of them may pass."""
    User.objects.select_for_update().filter(pk=user.pk).first()


def _require_free_label(user: User, label: str, *, other_than: int | None = None) -> None:
    taken = user.webauthn_credentials.filter(label__iexact=label)
    if other_than is not None:
        taken = taken.exclude(pk=other_than)
    if taken.exists():
        raise WebAuthnError(
            f"You already have a security key named “{label}”. Choose another name.",
            reason="duplicate",
        )


def _store(user: User, label: str, new_key: ceremony.NewKey) -> WebAuthnCredential:
    if WebAuthnCredential.objects.filter(credential_id=new_key.credential_id).exists():
        raise WebAuthnError("This security key is already registered.", reason="duplicate")
    try:
        with transaction.atomic():  # a savepoint: the constraints catch a race the checks missed
            return WebAuthnCredential.objects.create(
                user=user, label=label, credential_id=new_key.credential_id,
                public_key=new_key.public_key, sign_count=new_key.sign_count,
                transports=new_key.transports, discoverable=new_key.discoverable,
            )
    except IntegrityError as exc:
        raise WebAuthnError(
            f"A security key named “{label}”, or this same key, is already registered. "
            "Choose another name or another key.",
            reason="duplicate",
        ) from exc


# --- renaming and removing ------------------------------------------------------------------


def _own_key(user: User, key_id: int) -> WebAuthnCredential:
    key = user.webauthn_credentials.filter(pk=key_id).first()
    if key is None:
        raise WebAuthnError(
            "That security key is not on your account (it may have been removed).",
            reason="not_found",
        )
    return key


@transaction.atomic
def rename_key(
    *, request: HttpRequest, user: User, key_id: int, label: str
) -> WebAuthnCredential:
    """Give one of ``user``'s keys a new name (unique in the account, ignoring case)."""
    label = clean_label(label)
    _lock(user)
    _refuse_if_frozen(user, "Renaming a security key")
    key = _own_key(user, key_id)
    if key.label == label:
        return key
    _require_free_label(user, label, other_than=key.pk)
    old_label, key.label = key.label, label
    try:
        with transaction.atomic():
            key.save(update_fields=["label"])
    except IntegrityError as exc:
        raise WebAuthnError(
            f"You already have a security key named “{label}”.", reason="duplicate"
        ) from exc
    record_event(
        user=user, kind=EventKind.WEBAUTHN_RENAMED, request=request,
        details={"key_id": key.pk, "from": old_label, "to": label},
    )
    announce_to_account(
        user=user, template="webauthn_renamed", context={"old_label": old_label, "label": label}
    )
    return key


@transaction.atomic
def remove_key(*, request: HttpRequest, user: User, key_id: int) -> str:
    """Remove one of ``user``'s keys, unless the policy refuses; returns its label."""
    _lock(user)
    _refuse_if_frozen(user, "Removing a security key")
    key = _own_key(user, key_id)
    remaining_after = user.webauthn_credentials.count() - 1 + int(has_totp(user))
    if reason := refusal_to_remove_factor(user=user, remaining_after=remaining_after):
        raise WebAuthnError(reason, reason="refused")
    label, key_pk = key.label, key.pk
    key.delete()
    record_event(
        user=user, kind=EventKind.WEBAUTHN_REMOVED, request=request,
        details={"key_id": key_pk, "label": label, "second_factors_left": remaining_after},
    )
    announce_to_account(
        user=user, template="webauthn_removed",
        context={"label": label, "second_factors_left": remaining_after},
    )
    return label
