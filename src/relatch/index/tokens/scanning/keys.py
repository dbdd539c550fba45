"""The public keys GitHub signs secret-scanning alerts with, fetched from
SECRET_SCANNING_KEYS_URL and cached per process.

The document is ``{"public_keys": [{"key_identifier", "key": PEM, "is_current"}]}``. Keys are
read again every REFRESH_EVERY, and when an alert names an identifier the cache does not know
(GitHub rotated its key) — but at most once every MIN_GAP, so a flood of alerts with made-up
identifiers cannot make Relatch hammer GitHub (or whatever the URL names). Every fetch is
bounded: https only, no redirects, no proxy from the environment, timeouts, MAX_BYTES. TLS is
checked against the machine's trust store (``ssl.create_default_context()``, which reads
SSL_CERT_FILE), as the upstream index is (``relatch.index.upstream.client``).
"""

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from django.conf import settings

from relatch.web.fetch_json import FetchError, json_client, read_body

logger = logging.getLogger(__name__)

TIMEOUT = httpx.Timeout(10.0, connect=5.0)
# GitHub's document is about 2 KB; anything near this is not it.
MAX_BYTES = 256 * 1024
MAX_KEYS = 50
REFRESH_EVERY = 6 * 3600.0
MIN_GAP = 60.0
USER_AGENT = "Relatch (secret scanning partner)"


class KeysUnavailableError(Exception):
    """The keys could not be read (and none were read before): GitHub should retry later."""


@dataclass
class _Cached:
    keys: dict[str, ec.EllipticCurvePublicKey] = field(default_factory=dict)
    fetched_at: float | None = None  # last success (monotonic), None: never
    tried_at: float = 0.0  # last attempt, successful or not


_cache: dict[str, _Cached] = {}
# One fetch at a time per process: concurrent alerts wait for it instead of each fetching.
_lock = threading.Lock()


def public_key(identifier: str) -> ec.EllipticCurvePublicKey | None:
    """GitHub's key named ``identifier``, or None if GitHub publishes no such key.

    Raises KeysUnavailableError when the keys were never read successfully."""
    url = settings.SECRET_SCANNING_KEYS_URL
    with _lock:
        entry = _cache.setdefault(url, _Cached())
        now = time.monotonic()
        if _due(entry, identifier, now):
            entry.tried_at = now
            try:
                entry.keys, entry.fetched_at = fetch_keys(url), now
            except KeysUnavailableError as error:
                logger.warning("secret scanning keys not read from %s: %s", url, error)
        if entry.fetched_at is None:
            raise KeysUnavailableError("the signing keys could not be read")
        return entry.keys.get(identifier)


def _due(entry: _Cached, identifier: str, now: float) -> bool:
    if entry.tried_at and now - entry.tried_at < MIN_GAP:
        return False
    return (entry.fetched_at is None or now - entry.fetched_at > REFRESH_EVERY
            or identifier not in entry.keys)


def forget_keys() -> None:
    """Drop every cached key (tests, and an operator's shell after a key incident)."""
    with _lock:
        _cache.clear()


def fetch_keys(url: str) -> dict[str, ec.EllipticCurvePublicKey]:
    """Read and parse the key document at ``url``; raise KeysUnavailableError if unusable."""
    if urlsplit(url).scheme != "https":
        # Plain http would let anyone on the path swap in their own key.
        raise KeysUnavailableError("the keys URL is not https")
    try:
        with json_client(user_agent=USER_AGENT, timeout=TIMEOUT) as client:
            body = read_body(client, url, max_bytes=MAX_BYTES)
    except FetchError as error:
        raise KeysUnavailableError(str(error)) from None
    return parse_keys(body)


def parse_keys(body: bytes) -> dict[str, ec.EllipticCurvePublicKey]:
    """The P-256 keys of a key document, by identifier; others are skipped."""
    try:
        entries = json.loads(body)["public_keys"]
    except (ValueError, TypeError, KeyError) as error:
        raise KeysUnavailableError(f"not a key document: {error}") from None
    if not isinstance(entries, list):
        raise KeysUnavailableError("public_keys is not a list")
    keys: dict[str, ec.EllipticCurvePublicKey] = {}
    for entry in entries[:MAX_KEYS]:
        identifier, key = _key_of(entry)
        if identifier and key is not None:
            keys[identifier] = key
    if not keys:
        raise KeysUnavailableError("no usable P-256 key in the document")
    return keys


def _key_of(entry: object) -> tuple[str, ec.EllipticCurvePublicKey | None]:
    if not isinstance(entry, dict):
        return "", None
    identifier, pem = entry.get("key_identifier"), entry.get("key")
    if not isinstance(identifier, str) or not isinstance(pem, str):
        return "", None
    try:
        key = load_pem_public_key(pem.encode())
    except (ValueError, TypeError):
        return "", None
    # Only the kind GitHub signs with: a document offering another kind is not trusted for it.
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        return "", None
    return identifier, key
