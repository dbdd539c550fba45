"""A software WebAuthn authenticator, so security keys can be tested without a browser.

It does what a browser and a key do together: it reads the options the server put on the page
and answers with the JSON that PublicKeyCredential.toJSON() gives. It is written from the
WebAuthn spec (Level 2, §6.1 authenticator data, §6.5.4 "none" attestation, §5.8.1 client
data), with `cryptography` for the P-256 key and `cbor2` for CBOR: nothing of py_webauthn,
which the server uses, so the server's checks are checked against an independent client.

Parameters let a test misbehave the way an attacker or a broken key would: another origin,
another RP id, a counter that goes backwards, a forged signature.
"""

import hashlib
import json
import secrets
import struct
from base64 import urlsafe_b64decode, urlsafe_b64encode
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

FLAG_UP = 0x01  # user present
FLAG_UV = 0x04  # user verified
FLAG_BE = 0x08  # backup eligible
FLAG_BS = 0x10  # backed up
FLAG_AT = 0x40  # attested credential data included

ORIGIN = "http://testserver"  # the tests' RELATCH_BASE_URL
RP_ID = "testserver"


class AuthenticatorRefused(Exception):  # noqa: N818 (named after the browser's DOMExceptions)
    """What the browser would reject with InvalidStateError / NotAllowedError."""


def b64url(data: bytes) -> str:
    return urlsafe_b64encode(data).rstrip(b"=").decode()


def from_b64url(text: str) -> bytes:
    return urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class SoftAuthenticator:
    """One credential on one authenticator (like one key, or one passkey)."""

    origin: str = ORIGIN
    rp_id: str = RP_ID
    discoverable: bool = True
    sign_count: int = 0
    counts: bool = True  # False: a key without a counter (always 0), like synced passkeys
    credential_id: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    user_handle: bytes | None = None

    @property
    def credential_id_b64(self) -> str:
        return b64url(self.credential_id)

    # --- registration (navigator.credentials.create) ---------------------------------------

    def register(
        self,
        options: dict[str, Any],
        *,
        origin: str | None = None,
        rp_id: str | None = None,
        challenge: str | None = None,
    ) -> str:
        """The registration answer to ``options`` (PublicKeyCredentialCreationOptionsJSON)."""
        excluded = {d["id"] for d in options.get("excludeCredentials", [])}
        if self.credential_id_b64 in excluded:
            raise AuthenticatorRefused("InvalidStateError: credential already registered")
        self.user_handle = from_b64url(options["user"]["id"])
        client_data = self._client_data(
            "webauthn.create", challenge or options["challenge"], origin
        )
        auth_data = (
            self._rp_id_hash(rp_id or options.get("rp", {}).get("id") or self.rp_id)
            + bytes([FLAG_UP | FLAG_UV | FLAG_AT])
            + struct.pack(">I", self.sign_count)
            + bytes(16)  # AAGUID: zeros, as with "none" attestation
            + struct.pack(">H", len(self.credential_id))
            + self.credential_id
            + cbor2.dumps(self._cose_public_key())
        )
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return json.dumps({
            "id": self.credential_id_b64,
            "rawId": self.credential_id_b64,
            "type": "public-key",
            "authenticatorAttachment": "cross-platform",
            "clientExtensionResults": {"credProps": {"rk": self.discoverable}},
            "response": {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation),
                "transports": ["usb", "nfc"],
                "publicKeyAlgorithm": -7,
                "authenticatorData": b64url(auth_data),
            },
        })

    def _cose_public_key(self) -> dict[int, Any]:
        numbers = self.private_key.public_key().public_numbers()
        return {
            1: 2,  # kty: EC2
            3: -7,  # alg: ES256
            -1: 1,  # crv: P-256
            -2: numbers.x.to_bytes(32, "big"),
            -3: numbers.y.to_bytes(32, "big"),
        }

    # --- authentication (navigator.credentials.get) -----------------------------------------

    def authenticate(
        self,
        options: dict[str, Any],
        *,
        origin: str | None = None,
        rp_id: str | None = None,
        challenge: str | None = None,
        sign_count: int | None = None,
        user_verified: bool = True,
        forge: bool = False,
    ) -> str:
        """The assertion answering ``options`` (PublicKeyCredentialRequestOptionsJSON).

        ``sign_count`` overrides the counter (e.g. to go backwards, like a copied key);
        ``forge`` signs with a key the server never saw.
        """
        allowed = {d["id"] for d in options.get("allowCredentials", [])}
        if allowed and self.credential_id_b64 not in allowed:
            raise AuthenticatorRefused("NotAllowedError: no matching credential")
        if not allowed and not self.discoverable:
            raise AuthenticatorRefused("NotAllowedError: not a discoverable credential")
        if sign_count is None:
            self.sign_count += 1 if self.counts else 0
            sign_count = self.sign_count
        client_data = self._client_data("webauthn.get", challenge or options["challenge"], origin)
        flags = FLAG_UP | (FLAG_UV if user_verified else 0)
        auth_data = (
            self._rp_id_hash(rp_id or options.get("rpId") or self.rp_id)
            + bytes([flags])
            + struct.pack(">I", sign_count)
        )
        signer = ec.generate_private_key(ec.SECP256R1()) if forge else self.private_key
        signature = signer.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        return json.dumps({
            "id": self.credential_id_b64,
            "rawId": self.credential_id_b64,
            "type": "public-key",
            "authenticatorAttachment": "cross-platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
                "userHandle": b64url(self.user_handle) if self.user_handle else None,
            },
        })

    # --- shared -------------------------------------------------------------------------------

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        # Key order and compact form as browsers write it (WebAuthn §5.8.1.1).
        return json.dumps(
            {"type": kind, "challenge": challenge, "origin": origin or self.origin,
             "crossOrigin": False},
            separators=(",", ":"),
        ).encode()

    @staticmethod
    def _rp_id_hash(rp_id: str) -> bytes:
        return hashlib.sha256(rp_id.encode()).digest()
