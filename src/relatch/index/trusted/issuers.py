"""The signing keys of the OIDC issuers Relatch trusts: discovery and JWKS, fetched and cached.

Keys are fetched over HTTPS verified against the machine's trust store (SSL_CERT_FILE and
SSL_CERT_DIR, as for the upstream index), with no proxy from the environment, no redirects and
a size cap: the issuer's answer decides who may publish, so nothing between us and it may
substitute one. The discovery document must name the issuer itself and an https ``jwks_uri``.

Keys are kept in Django's cache per issuer. A token signed with a key we do not have makes us
fetch again (the issuer rotated its keys) at most once per REFETCH_INTERVAL per issuer, so a
flood of tokens with made-up key ids costs the issuer one request a minute, not one each.
"""

import hashlib
import logging
import time
from typing import Any

import httpx
from django.core.cache import cache

from relatch.index.trusted.errors import ExchangeRefusedError, invalid_token
from relatch.web.fetch_json import FetchError, json_client, read_json_object

logger = logging.getLogger(__name__)

DISCOVERY_PATH = "/.well-known/openid-configuration"
FETCH_TIMEOUT = 10.0  # seconds, per request
# GitHub's JWKS is about 5 KB; a document far larger is not a key set.
MAX_DOCUMENT_BYTES = 256 * 1024
MAX_KEYS = 50
# Known keys are refreshed this often (an issuer may retire one it has published).
KEYS_FRESH_FOR = 3600.0
# At most one fetch per issuer in this many seconds once keys are cached (an unknown kid, or
# a refresh); kept well below a CI token's five minutes so a rotation is seen in time.
REFETCH_INTERVAL = 60
# After a failed fetch with nothing cached, requests fail at once for this long instead of
# each waiting FETCH_TIMEOUT on an issuer that is down.
FAILURE_MEMORY = 15
# Symmetric keys ("oct") are never used: a key the issuer publishes is public, and an HMAC
# with it could be made by anyone (algorithm confusion).
ASYMMETRIC_KEY_TYPES = frozenset({"RSA", "EC", "OKP"})
USER_AGENT = "Relatch (trusted publishing)"


class IssuerFetchError(Exception):
    """The issuer's discovery document or key set could not be fetched or was unusable."""


def _key(issuer: str, what: str) -> str:
    return f"oidc:{what}:{hashlib.sha256(issuer.encode()).hexdigest()[:32]}"


def signing_key(issuer: str, kid: str) -> dict[str, Any]:
    """The public JWK ``kid`` of ``issuer`` (a listed issuer, checked by the caller).

    Raises ExchangeRefusedError when the key is unknown even after the refetch this minute
    allows, or when the issuer's keys cannot be fetched.
    """
    entry = cache.get(_key(issuer, "jwks"))
    if entry is None:
        entry = _load_cold(issuer)
    elif kid not in entry["keys"] or time.time() - entry["fetched_at"] > KEYS_FRESH_FOR:
        entry = _refetch(issuer, entry)
    jwk = entry["keys"].get(kid)
    if jwk is None:
        raise invalid_token(
            f"The token is signed with key '{kid[:64]}', which issuer {issuer} does not "
            "publish: it is not a token this issuer made, or was made with a key it retired."
        )
    return dict(jwk)


def _load_cold(issuer: str) -> dict[str, Any]:
    # Nothing cached (first use, or evicted): fetch, unless a fetch just failed.
    if (failure := cache.get(_key(issuer, "failed"))) is not None:
        raise _unreachable(issuer, failure)
    try:
        return _fetch_and_keep(issuer)
    except IssuerFetchError as error:
        cache.set(_key(issuer, "failed"), str(error), FAILURE_MEMORY)
        raise _unreachable(issuer, str(error)) from None


def _refetch(issuer: str, entry: dict[str, Any]) -> dict[str, Any]:
    # cache.add is atomic: of any number of requests this minute, one fetches.
    if not cache.add(_key(issuer, "refetch"), True, REFETCH_INTERVAL):
        return entry
    try:
        return _fetch_and_keep(issuer)
    except IssuerFetchError as error:
        # The keys we have still verify tokens signed with them.
        logger.warning("trusted publishing: refetching %s's keys failed: %s", issuer, error)
        return entry


def _unreachable(issuer: str, reason: str) -> ExchangeRefusedError:
    return invalid_token(
        f"Relatch could not fetch the signing keys of issuer {issuer} ({reason}); "
        "try again in a minute."
    )


def _fetch_and_keep(issuer: str) -> dict[str, Any]:
    keys = fetch_keys(issuer)
    entry = {"keys": keys, "fetched_at": time.time()}
    # Kept beyond KEYS_FRESH_FOR: stale keys still verify while the issuer cannot be reached.
    cache.set(_key(issuer, "jwks"), entry, None)
    return entry


def fetch_keys(issuer: str) -> dict[str, dict[str, Any]]:
    """The issuer's signing keys by kid, fetched now (discovery, then its jwks_uri)."""
    with _client() as client:
        discovery = _get_json(client, issuer + DISCOVERY_PATH)
        if discovery.get("issuer") != issuer:
            # A document for another issuer (or a look-alike URL) must not lend its keys.
            raise IssuerFetchError("its discovery document names another issuer")
        jwks_uri = discovery.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri.startswith("https://"):
            raise IssuerFetchError("its discovery document has no https jwks_uri")
        return _usable_keys(_get_json(client, jwks_uri))


def _usable_keys(jwks: dict[str, Any]) -> dict[str, dict[str, Any]]:
    listed = jwks.get("keys")
    if not isinstance(listed, list):
        raise IssuerFetchError("its key set has no keys")
    keys: dict[str, dict[str, Any]] = {}
    for jwk in listed[:MAX_KEYS]:
        if (isinstance(jwk, dict) and isinstance(jwk.get("kid"), str)
                and jwk.get("kty") in ASYMMETRIC_KEY_TYPES
                and jwk.get("use", "sig") == "sig"):
            keys[jwk["kid"]] = jwk
    return keys


def _client() -> httpx.Client:
    return json_client(user_agent=USER_AGENT, timeout=httpx.Timeout(FETCH_TIMEOUT))


def _get_json(client: httpx.Client, url: str) -> dict[str, Any]:
    try:
        return read_json_object(client, url, max_bytes=MAX_DOCUMENT_BYTES)
    except FetchError as error:
        raise IssuerFetchError(str(error)) from None
