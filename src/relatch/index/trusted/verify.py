"""Checking a CI provider's OIDC token: signature, issuer, audience and times (PyJWT).

The token's unverified ``iss`` only picks which listed issuer's keys to check it with; every
claim used afterwards comes from the verified token. Only asymmetric algorithms matching the
issuer's published key are accepted: ``none`` would accept any token, and an HMAC keyed with
the issuer's *public* key could be made by anyone (algorithm confusion).
"""

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
from django.conf import settings

from relatch.index.trusted.errors import ExchangeRefusedError, invalid_token
from relatch.index.trusted.issuers import signing_key

# Seconds of clock difference allowed between the issuer, the CI runner and us, on exp, nbf
# and iat. The replay lock on a token's jti lasts longer than this (exchange.KEEP_MARGIN).
LEEWAY = 30
# CI tokens are 1-2 KB; anything far larger is refused before it is parsed.
MAX_TOKEN_LENGTH = 16 * 1024
MAX_JTI_LENGTH = 200  # UsedOIDCToken.jti
REQUIRED_CLAIMS = ("iss", "aud", "exp", "iat", "nbf", "jti")
# Algorithms by the key type that can verify them (and, for EC, the curve).
_RSA = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_EC_BY_CURVE = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
ASYMMETRIC_ALGORITHMS = _RSA | frozenset(_EC_BY_CURVE.values()) | {"EdDSA"}
NOT_ENABLED = "Trusted publishing functionality not enabled"


@dataclass(frozen=True)
class VerifiedToken:
    """A token whose signature and standard claims were checked; ``claims`` are its own."""

    issuer: str
    dialect: str  # "github" or "gitlab": which claims name the repository and workflow
    claims: dict[str, Any]

    @property
    def jti(self) -> str:
        return str(self.claims["jti"])

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(int(self.claims["exp"]), tz=UTC)


def verify_token(raw: str) -> VerifiedToken:
    """Verify ``raw`` (a compact JWT); raise ExchangeRefusedError saying what is wrong."""
    if not settings.OIDC_ISSUERS:
        raise ExchangeRefusedError("not-enabled", NOT_ENABLED)
    if len(raw) > MAX_TOKEN_LENGTH:
        raise invalid_token(f"The token is longer than {MAX_TOKEN_LENGTH} characters: it is "
                            "not a CI provider's OIDC token.")
    header, unverified = _unverified(raw)
    issuer = unverified.get("iss")
    if not isinstance(issuer, str) or issuer not in settings.OIDC_ISSUERS:
        listed = ", ".join(sorted(settings.OIDC_ISSUERS))
        raise invalid_token(f"The token's issuer {str(issuer)[:200]!r} is not one this index "
                            f"trusts (it trusts: {listed}).")
    alg, kid = header.get("alg"), header.get("kid")
    if alg not in ASYMMETRIC_ALGORITHMS:
        raise invalid_token(f"The token's algorithm {str(alg)[:20]!r} is not accepted: only "
                            "signatures made with the issuer's private key (RS256, ES256, …).")
    if not isinstance(kid, str) or not kid:
        raise invalid_token("The token names no signing key (its header has no 'kid').")
    key = _public_key(signing_key(issuer, kid), alg, issuer=issuer, kid=kid)
    claims = _decode(raw, key, alg, issuer=issuer, kid=kid, unverified=unverified)
    jti = claims["jti"]
    if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI_LENGTH:
        raise invalid_token(f"The token's 'jti' claim must be a string of 1 to {MAX_JTI_LENGTH} "
                            "characters.")
    return VerifiedToken(issuer=issuer, dialect=settings.OIDC_ISSUERS[issuer], claims=claims)


def _unverified(raw: str) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        header = jwt.get_unverified_header(raw)
        claims = jwt.decode(raw, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise invalid_token("The token is not a JWT (three base64url parts: a JSON header, "
                            "JSON claims and a signature).") from None
    return header, claims


def _public_key(jwk: dict[str, Any], alg: str, *, issuer: str, kid: str) -> Any:
    """The key object for ``jwk``, if ``alg`` is what that key verifies."""
    kty = jwk.get("kty")
    fits = ((kty == "RSA" and alg in _RSA)
            or (kty == "EC" and _EC_BY_CURVE.get(str(jwk.get("crv"))) == alg)
            or (kty == "OKP" and alg == "EdDSA"))
    # A key published for one algorithm is used with that one only.
    if not fits or jwk.get("alg", alg) != alg:
        raise invalid_token(f"The token's algorithm {alg} does not fit issuer {issuer}'s key "
                            f"'{kid[:64]}'.")
    try:
        return jwt.PyJWK(jwk, algorithm=alg).key
    except jwt.PyJWTError:
        raise invalid_token(f"Issuer {issuer}'s key '{kid[:64]}' is not usable.") from None


def _decode(raw: str, key: Any, alg: str, *, issuer: str, kid: str,
            unverified: dict[str, Any]) -> dict[str, Any]:
    audience = settings.OIDC_AUDIENCE
    try:
        return jwt.decode(
            raw, key, algorithms=[alg], audience=audience, issuer=issuer, leeway=LEEWAY,
            options={"require": list(REQUIRED_CLAIMS), "verify_signature": True,
                     "verify_exp": True, "verify_nbf": True, "verify_iat": True,
                     "verify_aud": True, "verify_iss": True},
        )
    except jwt.InvalidSignatureError:
        raise invalid_token(f"The token's signature does not verify with issuer {issuer}'s "
                            f"key '{kid[:64]}': it was not made by that issuer.") from None
    except jwt.MissingRequiredClaimError as error:
        raise invalid_token(f"The token has no '{error.claim}' claim.") from None
    except jwt.ExpiredSignatureError:
        raise invalid_token(f"The token expired at {_when(unverified.get('exp'))} (allowing "
                            f"{LEEWAY} s of clock difference): ask the CI provider for a "
                            "fresh one.") from None
    except jwt.ImmatureSignatureError as error:
        if "(iat)" in str(error):
            raise invalid_token(f"The token says it was issued at {_when(unverified.get('iat'))}"
                                ", in the future: the issuer's or this server's clock is "
                                "wrong.") from None
        raise invalid_token(f"The token is not valid before {_when(unverified.get('nbf'))} "
                            f"(allowing {LEEWAY} s of clock difference).") from None
    except jwt.InvalidAudienceError:
        raise invalid_token(f"The token is for audience {_short(unverified.get('aud'))}, not "
                            f"this index's {audience!r}: request the token with audience "
                            f"{audience!r} (see /_/oidc/audience).") from None
    except jwt.PyJWTError as error:
        # Any other malformed claim (exp that is not a number, …): PyJWT's own words.
        raise invalid_token(f"The token was refused: {str(error)[:200]}") from None


def _when(value: Any) -> str:
    """A claim's time for the message: absolute and relative to now."""
    try:
        stamp = int(value)
        at = datetime.fromtimestamp(stamp, tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return repr(value)[:40]
    delta = int(time.time()) - stamp
    relative = f"{delta} s ago" if delta >= 0 else f"in {-delta} s"
    return f"{at:%Y-%m-%d %H:%M:%S} UTC, {relative}"


def _short(value: Any) -> str:
    return repr(value)[:200]
