"""A small RDAP client for domains: RFC 9224's bootstrap file, RFC 9083's domain answers.

Plain HTTP with ``httpx``, not an RDAP library. The maintained Python client (whoisit) fetches
IANA's bootstrap from fixed URLs into module-global state, uses ``requests`` and follows any
redirect; this check needs the bootstrap to come from a setting (a URL or a file) and be cached
in the data directory, a bound on the whole time and size of every answer, redirects to https
only, and a strict check that an answer is about the domain asked for. All of that is the part
a library would not do, and RDAP itself is one GET and a JSON document.

Where requests go: https only, to the servers the bootstrap names (and their redirects). The
one exception is for tests and local mirrors: when ``RELATCH_RDAP_BOOTSTRAP`` is itself an
http(s) URL on a loopback address, plain http to loopback addresses is allowed as well.

Every failure raises ``RdapError`` (a timeout, HTTP 429 or 5xx, a TLD the bootstrap does not
cover, an answer that is not RDAP, or one about another domain). The caller changes nothing
and tries again later.
"""

import ipaddress
import json
import logging
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
from django.conf import settings
from django.utils import timezone

logger = logging.getLogger(__name__)

IANA_BOOTSTRAP = "https://data.iana.org/rdap/dns.json"
BOOTSTRAP_MAX_AGE = timedelta(days=7)
BOOTSTRAP_MAX_BYTES = 4 * 1024 * 1024  # IANA's file is about 60 kB
ANSWER_MAX_BYTES = 1024 * 1024
MAX_REDIRECTS = 3
# Names asked for one domain: mail.example.co.uk, example.co.uk, co.uk (an address on a
# subdomain is held by whoever holds the registered name above it).
MAX_NAMES_TRIED = 3
LOOPBACK_NAMES = {"localhost"}


class RdapError(Exception):
    """A lookup that told nothing: the domain's record stays as it was."""

    retry_after: int | None = None


class RdapUnavailableError(RdapError):
    """Timeout, connection failure, HTTP 429 or 5xx, a refused redirect."""

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RdapUnsupportedError(RdapError):
    """The bootstrap names no RDAP server for the domain's TLD (or none over https)."""


class RdapMalformedError(RdapError):
    """An answer that is not an RDAP domain object about the name asked for."""


class RdapNotFoundError(RdapError):
    """The registry has no record of the domain nor of its parents."""


@dataclass(frozen=True)
class DomainRecord:
    """What a registry said about a domain: the name it answered for (``ldhName``), its
    statuses (RFC 9083 §4.6 words, lower case: "redemption period"), and the registration and
    expiration events' dates."""

    name: str
    statuses: tuple[str, ...]
    registered_at: datetime | None
    expires_at: datetime | None


@dataclass(frozen=True)
class Bootstrap:
    """RFC 9224: each service is (entries, base URLs); an entry is a TLD or a longer suffix."""

    services: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]

    def servers_for(self, domain: str) -> tuple[str, tuple[str, ...]]:
        """The longest entry ``domain`` ends with, and its base URLs; RdapUnsupportedError when
        none matches."""
        best: tuple[str, tuple[str, ...]] | None = None
        for entries, urls in self.services:
            for entry in entries:
                if (domain == entry or domain.endswith("." + entry)) and (
                    best is None or len(entry) > len(best[0])
                ):
                    best = (entry, urls)
        if best is None:
            tld = domain.rsplit(".", 1)[-1]
            raise RdapUnsupportedError(f"no RDAP server for .{tld} in the bootstrap file")
        return best


def parse_bootstrap(data: Any) -> Bootstrap:
    """Read an RFC 9224 DNS bootstrap document; RdapMalformedError when it is not one."""
    services = data.get("services") if isinstance(data, dict) else None
    if not isinstance(services, list):
        raise RdapMalformedError("the bootstrap file has no list of services")
    parsed = []
    for service in services:
        if (not isinstance(service, list) or len(service) < 2
                or not all(isinstance(part, list) for part in service[:2])
                or not all(isinstance(s, str) for s in service[0] + service[1])):
            raise RdapMalformedError("the bootstrap file has a service that is not two lists "
                                     "of names")
        entries = tuple(e.strip().strip(".").lower() for e in service[0] if e.strip())
        urls = tuple(u.strip() for u in service[1] if u.strip())
        parsed.append((entries, urls))
    return Bootstrap(tuple(parsed))


def to_ascii(domain: str) -> str:
    """The domain's A-label form (IDNA), lower case; RdapMalformedError for a name that has none."""
    try:
        name = domain.strip().rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise RdapMalformedError(f"{domain!r} is not a domain name") from exc
    if not name or len(name) > 253:
        raise RdapMalformedError(f"{domain!r} is not a domain name")
    return name


_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")


def normalize_status(status: str) -> str:
    """RFC 9083 words, whatever the server's spelling: "redemptionPeriod", "REDEMPTION_PERIOD"
    and "redemption period" are all "redemption period"."""
    words = _CAMEL.sub(" ", status).replace("_", " ").replace("-", " ")
    return " ".join(words.lower().split())


def _event_date(event: dict[str, Any]) -> datetime:
    raw = event.get("eventDate")
    if not isinstance(raw, str):
        raise RdapMalformedError(f"the {event.get('eventAction')!r} event has no date")
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError as exc:
        raise RdapMalformedError(f"the {event.get('eventAction')!r} event's date {raw[:40]!r} "
                            "is not a date") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_domain(data: Any, *, asked: str) -> DomainRecord:
    """The record in an RDAP domain answer (RFC 9083 §5.3) about ``asked`` (A-label, lower
    case); RdapMalformedError when it is not a domain object, or is about another domain."""
    if not isinstance(data, dict):
        raise RdapMalformedError("the answer is not a JSON object")
    if data.get("objectClassName") != "domain":
        raise RdapMalformedError(f"the answer is not a domain object "
                            f"(objectClassName {str(data.get('objectClassName'))[:40]!r})")
    answered = data.get("ldhName")
    if not isinstance(answered, str) and isinstance(data.get("unicodeName"), str):
        answered = to_ascii(data["unicodeName"])
    if not isinstance(answered, str) or answered.strip().rstrip(".").lower() != asked:
        raise RdapMalformedError(f"the answer is about {str(answered)[:80]!r}, not {asked!r}")
    statuses = data.get("status", [])
    if not isinstance(statuses, list) or not all(isinstance(s, str) for s in statuses):
        raise RdapMalformedError("the answer's status is not a list of words")
    events = data.get("events", [])
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise RdapMalformedError("the answer's events are not a list of objects")
    registered = [_event_date(e) for e in events
                  if e.get("eventAction") in {"registration", "reregistration"}]
    expires = [_event_date(e) for e in events if e.get("eventAction") == "expiration"]
    return DomainRecord(
        name=asked,
        statuses=tuple(dict.fromkeys(normalize_status(s) for s in statuses if s.strip())),
        registered_at=max(registered, default=None),
        expires_at=max(expires, default=None),
    )


def _user_agent() -> str:
    try:
        release = version("relatch")
    except PackageNotFoundError:
        release = "dev"
    return f"Relatch/{release} (email domain check; +{settings.BASE_URL})"


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _is_url(source: str) -> bool:
    return urlsplit(source).scheme in {"http", "https"}


def loopback_http_allowed() -> bool:
    """Plain http is allowed (to loopback addresses only) when the bootstrap setting is
    itself an http(s) URL on a loopback address: a test server or a local mirror."""
    source = settings.RDAP_BOOTSTRAP
    return _is_url(source) and _is_loopback(urlsplit(source).hostname)


@dataclass
class RdapClient:
    """One pass's client: keeps its HTTP connections, and the hosts that refused it (429,
    5xx, timeout) so the rest of the pass leaves them alone."""

    timeout: float = field(default_factory=lambda: float(settings.RDAP_TIMEOUT))
    allow_loopback_http: bool = field(default_factory=loopback_http_allowed)
    refused_hosts: dict[str, str] = field(default_factory=dict)
    bootstrap: Bootstrap | None = None

    def __post_init__(self) -> None:
        self._http = httpx.Client(
            timeout=httpx.Timeout(self.timeout), follow_redirects=False,
            headers={"User-Agent": _user_agent(),
                     "Accept": "application/rdap+json, application/json;q=0.9"},
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "RdapClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- what may be contacted ---------------------------------------------------------

    def allowed(self, url: str) -> bool:
        parts = urlsplit(url)
        if parts.scheme == "https" and parts.hostname:
            return True
        return parts.scheme == "http" and self.allow_loopback_http and _is_loopback(
            parts.hostname)

    # --- HTTP --------------------------------------------------------------------------

    def get_json(self, url: str, *, max_bytes: int = ANSWER_MAX_BYTES,
                 remember_refusal: bool = True) -> tuple[int, Any]:
        """(200, the parsed body) or (404, None); RdapError otherwise. Follows at most
        MAX_REDIRECTS redirects, each to an allowed URL, all within ``timeout`` seconds. A
        host that refuses (429, 5xx, timeout) is not asked again in this pass, unless
        ``remember_refusal`` is off (the bootstrap's host is not a registry's)."""
        deadline = time.monotonic() + self.timeout
        for _ in range(MAX_REDIRECTS + 1):
            if not self.allowed(url):
                raise RdapUnavailableError(f"refused to fetch {_shown(url)}: https only")
            host = urlsplit(url).netloc
            if host in self.refused_hosts:
                raise RdapUnavailableError(
                    f"{host} {self.refused_hosts[host]} earlier in this pass")
            left = deadline - time.monotonic()
            if left <= 0:
                raise RdapUnavailableError(f"{host} did not answer within {self.timeout:g} s")
            try:
                with self._http.stream("GET", url, timeout=httpx.Timeout(left)) as response:
                    if response.is_redirect and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        continue
                    status = response.status_code
                    if status == 404:
                        return 404, None
                    if status != 200:
                        raise self._refusal(host, response, remember=remember_refusal)
                    body = b"".join(_capped(response.iter_bytes(), max_bytes, deadline))
            except httpx.TimeoutException as exc:
                if remember_refusal:
                    self.refused_hosts[host] = "timed out"
                raise RdapUnavailableError(
                    f"{host} did not answer within {self.timeout:g} s") from exc
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                raise RdapUnavailableError(f"{host}: {type(exc).__name__}: {exc}"[:200]) from exc
            try:
                return 200, json.loads(body)
            except ValueError as exc:
                raise RdapMalformedError(
                    f"{host} answered with something that is not JSON") from exc
        raise RdapUnavailableError(f"more than {MAX_REDIRECTS} redirects from {_shown(url)}")

    def _refusal(self, host: str, response: httpx.Response, *, remember: bool) -> RdapError:
        status = response.status_code
        if status == 429 or status >= 500:
            if remember:
                self.refused_hosts[host] = f"answered HTTP {status}"
            retry = response.headers.get("retry-after", "").strip()
            return RdapUnavailableError(f"{host} answered HTTP {status}",
                                   retry_after=int(retry) if retry.isdigit() else None)
        return RdapUnavailableError(f"{host} answered HTTP {status}")

    # --- the bootstrap -----------------------------------------------------------------

    def load_bootstrap(self, *, now: datetime | None = None) -> Bootstrap:
        """RELATCH_RDAP_BOOTSTRAP, read from its file, or fetched and cached in the data
        directory for BOOTSTRAP_MAX_AGE. A failed refresh falls back to the cached copy."""
        if self.bootstrap is None:
            self.bootstrap = self._load_bootstrap(now or timezone.now())
        return self.bootstrap

    def _load_bootstrap(self, now: datetime) -> Bootstrap:
        source = settings.RDAP_BOOTSTRAP
        if not _is_url(source):
            try:
                data = json.loads(Path(source).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise RdapUnavailableError(
                    f"cannot read the bootstrap file {source}: {exc}") from exc
            return parse_bootstrap(data)
        cached = read_cached_bootstrap(source)
        if cached is not None and now - cached[0] < BOOTSTRAP_MAX_AGE:
            return cached[1]
        try:
            status, data = self.get_json(source, max_bytes=BOOTSTRAP_MAX_BYTES,
                                         remember_refusal=False)
            if status != 200:
                raise RdapUnavailableError(f"{_shown(source)} answered HTTP 404")
            fresh = parse_bootstrap(data)
        except RdapError as exc:
            if cached is None:
                raise
            logger.warning("RDAP bootstrap refresh from %s failed (%s); using the copy "
                           "fetched %s", _shown(source), exc, cached[0].isoformat())
            return cached[1]
        write_cached_bootstrap(source, data, fetched_at=now)
        logger.info("RDAP bootstrap fetched from %s (%d services)", _shown(source),
                    len(fresh.services))
        return fresh

    # --- a domain ----------------------------------------------------------------------

    def lookup(self, domain: str, *, now: datetime | None = None) -> DomainRecord:
        """The registry's record of ``domain``, or of the nearest parent it has one for."""
        name = to_ascii(domain)
        entry, urls = self.load_bootstrap(now=now).servers_for(name)
        base = next((u for u in urls if u.startswith("https:") and self.allowed(u)), None)
        base = base or next((u for u in urls if self.allowed(u)), None)
        if base is None:
            raise RdapUnsupportedError(f"no https RDAP server for .{entry} in the bootstrap file")
        base = base if base.endswith("/") else base + "/"
        for candidate in _names_to_try(name, entry):
            status, data = self.get_json(f"{base}domain/{candidate}")
            if status == 200:
                return parse_domain(data, asked=candidate)
        raise RdapNotFoundError(f"{urlsplit(base).netloc} has no record of {name}")


def _names_to_try(name: str, entry: str) -> Iterator[str]:
    """``name`` and its parents, longest first, down to one label more than the bootstrap
    entry; of a deep name only the MAX_NAMES_TRIED shortest (registries hold those)."""
    labels, floor = name.split("."), len(entry.split(".")) + 1
    first = max(0, len(labels) - (floor + MAX_NAMES_TRIED - 1))
    for start in range(first, len(labels) - floor + 1):
        yield ".".join(labels[start:])


def _capped(chunks: Iterator[bytes], max_bytes: int, deadline: float) -> Iterator[bytes]:
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > max_bytes:
            raise RdapMalformedError(f"the answer is larger than {max_bytes} bytes")
        if time.monotonic() > deadline:
            raise httpx.ReadTimeout("the answer took too long")
        yield chunk


def _shown(url: str) -> str:
    """A URL for a log line, without any query string or credentials."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}" \
           f"{parts.path}"


# --- the cached bootstrap in the data directory -----------------------------------------

def bootstrap_cache_path() -> Path:
    return Path(settings.DATA_DIR) / "rdap" / "dns-bootstrap.json"


def read_cached_bootstrap(source: str) -> tuple[datetime, Bootstrap] | None:
    """(when it was fetched, the bootstrap) when the cache holds a copy from ``source``."""
    try:
        cached = json.loads(bootstrap_cache_path().read_text(encoding="utf-8"))
        if cached.get("source") != source:
            return None
        fetched_at = datetime.fromisoformat(cached["fetched_at"])
        return fetched_at, parse_bootstrap(cached["bootstrap"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RdapError):
        return None


def write_cached_bootstrap(source: str, data: Any, *, fetched_at: datetime) -> None:
    """Replace the cached copy at once (a reader never sees half a file)."""
    path = bootstrap_cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps({"source": source, "fetched_at": fetched_at.isoformat(),
                                       "bootstrap": data}), encoding="utf-8")
        partial.replace(path)
    except OSError as exc:  # the lookups still work, from this fetch
        logger.warning("could not cache the RDAP bootstrap in %s: %s", path, exc)
