"""The WebAuthn ceremonies themselves, with py_webauthn: options for the browser, and the
checks of what the browser sends back. Pure functions; the services store the outcome.

Every refusal from py_webauthn (or from garbage it was fed) becomes a WebAuthnError with a plain
message: a forged, replayed or malformed answer is a 400 with a sentence, never a 500.
"""

import json
import logging
from dataclasses import dataclass
from typing import Any

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url, options_to_json_dict
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from relatch.accounts.models import User
from relatch.mfa.models import WebAuthnCredential
from relatch.mfa.webauthn.errors import WebAuthnError
from relatch.mfa.webauthn.relying_party import RP_NAME, rp_id, rp_origin, user_handle

logger = logging.getLogger(__name__)

# A real answer is a few kilobytes at most (a credential id is at most 1023 bytes); anything
# much larger is refused before it is parsed, so nobody makes the server chew on megabytes.
MAX_CREDENTIAL_JSON = 16_000
MAX_CREDENTIAL_ID = 1400  # base64url characters; the column's size
CEREMONY_TIMEOUT_MS = 120_000
SUPPORTED_ALGORITHMS = [
    COSEAlgorithmIdentifier.ECDSA_SHA_256,
    COSEAlgorithmIdentifier.EDDSA,
    COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256,
]

MALFORMED = "Your browser sent a security key answer that could not be read. Try again."
REGISTRATION_REFUSED = (
    "The security key's answer could not be verified, so the key was not added. Try again."
)
ASSERTION_REFUSED = "The security key's answer could not be verified. Try again."


@dataclass(frozen=True)
class NewKey:
    """What a verified registration tells us about the key."""

    credential_id: str  # base64url
    public_key: bytes
    sign_count: int
    transports: list[str]
    discoverable: bool


def parse_credential_json(credential_json: object) -> dict[str, Any]:
    """The browser's PublicKeyCredential JSON as a dict, or WebAuthnError for anything else."""
    if not isinstance(credential_json, str) or not credential_json.strip():
        raise WebAuthnError(MALFORMED, reason="malformed")
    if len(credential_json) > MAX_CREDENTIAL_JSON:
        raise WebAuthnError(MALFORMED, reason="malformed")
    try:
        data = json.loads(credential_json)
    except (ValueError, RecursionError) as exc:  # RecursionError: deeply nested arrays
        raise WebAuthnError(MALFORMED, reason="malformed") from exc
    if not isinstance(data, dict) or not _is_credential_id(data.get("id")):
        raise WebAuthnError(MALFORMED, reason="malformed")
    return data


def _is_credential_id(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_CREDENTIAL_ID


def descriptors(keys: list[WebAuthnCredential]) -> list[PublicKeyCredentialDescriptor]:
    """How the browser is told about registered keys (to exclude or to allow them)."""
    known = {t.value for t in AuthenticatorTransport}
    found = []
    for key in keys:
        try:
            raw_id = base64url_to_bytes(key.credential_id)
        except ValueError:
            # Only a damaged row gets here; one bad key must not lock its owner out of the rest.
            logger.warning("Security key %s has an unreadable credential id", key.pk)
            continue
        transports = [AuthenticatorTransport(t) for t in key.transports if t in known]
        found.append(PublicKeyCredentialDescriptor(id=raw_id, transports=transports))
    return found


def creation_options(
    *, user: User, challenge: bytes, existing: list[WebAuthnCredential]
) -> dict[str, Any]:
    """Options for navigator.credentials.create(), as JSON-safe data."""
    options = generate_registration_options(
        rp_id=rp_id(),
        rp_name=RP_NAME,
        user_name=user.username,
        user_id=user_handle(user.pk),
        user_display_name=user.name or user.username,
        challenge=challenge,
        timeout=CEREMONY_TIMEOUT_MS,
        # No attestation: Relatch accepts any key; asking would only leak the key's model.
        attestation=AttestationConveyancePreference.NONE,
        # "Preferred": a key that can hold a passkey makes one, so it can also sign in alone.
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        # The same key twice would be one factor counted as two.
        exclude_credentials=descriptors(existing),
        supported_pub_key_algs=SUPPORTED_ALGORITHMS,
    )
    data = options_to_json_dict(options)
    data["extensions"] = {"credProps": True}  # tells us whether a passkey was made
    return data


def request_options(
    *, challenge: bytes, allowed: list[WebAuthnCredential], require_verification: bool
) -> dict[str, Any]:
    """Options for navigator.credentials.get(), as JSON-safe data."""
    options = generate_authentication_options(
        rp_id=rp_id(),
        challenge=challenge,
        timeout=CEREMONY_TIMEOUT_MS,
        allow_credentials=descriptors(allowed),
        user_verification=(
            UserVerificationRequirement.REQUIRED
            if require_verification
            else UserVerificationRequirement.PREFERRED
        ),
    )
    return options_to_json_dict(options)


def verify_new_key(*, data: dict[str, Any], challenge: bytes) -> NewKey:
    """Check a registration answer: our challenge, our origin, our RP id, a supported key."""
    try:
        verified = verify_registration_response(
            credential=data,
            expected_challenge=challenge,
            expected_rp_id=rp_id(),
            expected_origin=rp_origin(),
            supported_pub_key_algs=SUPPORTED_ALGORITHMS,
        )
    except (WebAuthnException, ValueError, TypeError) as exc:
        logger.info("Security key registration refused: %s", exc)
        raise WebAuthnError(REGISTRATION_REFUSED, reason="invalid") from exc
    credential_id = bytes_to_base64url(verified.credential_id)
    if not _is_credential_id(credential_id):
        raise WebAuthnError(REGISTRATION_REFUSED, reason="invalid")
    return NewKey(
        credential_id=credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=_transports(data),
        discoverable=_discoverable(data, backed_up=verified.credential_backed_up),
    )


def _transports(data: dict[str, Any]) -> list[str]:
    response = data.get("response")
    listed = response.get("transports") if isinstance(response, dict) else None
    known = {t.value for t in AuthenticatorTransport}
    return [t for t in listed if t in known][:8] if isinstance(listed, list) else []


def _discoverable(data: dict[str, Any], *, backed_up: bool) -> bool:
    """The credProps extension says whether the key kept a passkey; without it, a synced
    (backed-up) credential is a passkey."""
    results = data.get("clientExtensionResults")
    props = results.get("credProps") if isinstance(results, dict) else None
    rk = props.get("rk") if isinstance(props, dict) else None
    return rk if isinstance(rk, bool) else backed_up


def verify_assertion(
    *,
    data: dict[str, Any],
    challenge: bytes,
    key: WebAuthnCredential,
    require_verification: bool,
) -> int:
    """Check a sign-in answer against ``key``'s public key; return the key's new sign count.

    The counter is compared by the caller after the signature is known to be genuine, so a
    forged answer is reported as forged, not as a copied key.
    """
    try:
        verified = verify_authentication_response(
            credential=data,
            expected_challenge=challenge,
            expected_rp_id=rp_id(),
            expected_origin=rp_origin(),
            credential_public_key=bytes(key.public_key),
            credential_current_sign_count=0,
            require_user_verification=require_verification,
        )
    except (WebAuthnException, ValueError, TypeError) as exc:
        logger.info("Security key sign-in refused: %s", exc)
        raise WebAuthnError(ASSERTION_REFUSED, reason="invalid") from exc
    return verified.new_sign_count
