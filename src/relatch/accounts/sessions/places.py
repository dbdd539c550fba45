"""Where a device was, coarsely: a city and country from the operator's GeoIP database, or else
the network its address belongs to.

The database is optional (RELATCH_GEOIP_DATABASE, a MaxMind DB file such as GeoLite2-City.mmdb,
read with the ``maxminddb`` package): Relatch ships none, and asks no service on the network
where an address is. Nothing here may break the devices page: a missing package, an unreadable
or replaced file, an address the database does not know all answer "no place".
"""

import logging
from dataclasses import dataclass
from functools import lru_cache
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network
from pathlib import Path
from typing import Any, Protocol

from django.conf import settings

logger = logging.getLogger(__name__)

# The networks shown without a database: wide enough not to pin a household, narrow enough
# that a person tells their home from a stranger's country (a /24 or an IPv6 site's /48).
_IPV4_PREFIX = 24
_IPV6_PREFIX = 48
_LANGUAGE = "en"


class Reader(Protocol):
    """What is used of ``maxminddb.Reader`` (tests hand in their own)."""

    def get(self, ip_address: str) -> Any: ...  # the record's shape is the file's


@dataclass(frozen=True)
class Place:
    """``where``: "Lyon, France" (empty when unknown); ``network``: "203.0.113.0/24"."""

    where: str
    network: str


def place_of(ip: str | None) -> Place:
    """The coarse place of ``ip`` (None: no address was recorded)."""
    if not ip:
        return Place(where="", network="")
    return Place(where=geoip_place(ip, reader=configured_reader()), network=coarse_network(ip))


def coarse_network(ip: str) -> str:
    """The /24 (IPv4) or /48 (IPv6) that ``ip`` is in; "" for something not an address."""
    try:
        address = ip_address(ip)
    except ValueError:
        return ""
    if isinstance(address, IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    prefix = _IPV4_PREFIX if isinstance(address, IPv4Address) else _IPV6_PREFIX
    return str(ip_network(f"{address}/{prefix}", strict=False))


def geoip_place(ip: str, *, reader: Reader | None) -> str:
    """ "City, Country", "Country", or "" (no reader, an unknown address, a failed lookup)."""
    if reader is None:
        return ""
    try:
        record = reader.get(ip)
    # The reader is another project's code over a file Relatch did not make: whatever it raises
    # (a bad address, a corrupt or truncated file), the page shows the network instead.
    except Exception as error:  # noqa: BLE001
        logger.warning("GeoIP lookup failed: %s", type(error).__name__)
        return ""
    return ", ".join(part for part in (_name(record, "city"), _name(record, "country")) if part)


def _name(record: object, key: str) -> str:
    # GeoLite2's shape ({"city": {"names": {"en": "Lyon"}}}), checked at each step: another
    # vendor's file may hold anything under these keys.
    part = record.get(key) if isinstance(record, dict) else None
    names = part.get("names") if isinstance(part, dict) else None
    name = names.get(_LANGUAGE) if isinstance(names, dict) else None
    return name if isinstance(name, str) else ""


def configured_reader() -> Reader | None:
    """A reader of RELATCH_GEOIP_DATABASE, or None when it is unset or cannot be opened."""
    path = settings.GEOIP_DATABASE
    if not path:
        return None
    try:
        changed = Path(path).stat().st_mtime_ns
    except OSError:
        changed = None  # _open says why, once
    # Keyed by the file's time as well: an operator's weekly update is read without a restart.
    return _open(path, changed)


@lru_cache(maxsize=2)
def _open(path: str, changed: int | None) -> Reader | None:
    try:
        import maxminddb  # an optional dependency: `pip install relatch[geoip]`
    except ImportError:
        logger.warning("RELATCH_GEOIP_DATABASE is set but the maxminddb package is missing")
        return None
    try:
        reader: Reader = maxminddb.open_database(path)
    except (OSError, ValueError, maxminddb.InvalidDatabaseError) as error:
        logger.warning("GeoIP database %s cannot be read: %s", path, type(error).__name__)
        return None
    return reader
