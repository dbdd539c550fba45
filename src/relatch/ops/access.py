"""Who may read /metrics and the detail of /health/ready: the configured networks
(RELATCH_METRICS_ALLOW) or the bearer of RELATCH_METRICS_TOKEN."""

import hmac
from ipaddress import ip_address

from django.conf import settings
from django.http import HttpRequest

from relatch.web.client import client_ip


def from_allowed_network(request: HttpRequest) -> bool:
    """The client address Relatch trusts (X-Forwarded-For only through RELATCH_PROXY_COUNT
    proxies, so a client cannot name its own) is in one of the allowed networks."""
    found = client_ip(request)
    if found is None:
        return False
    address = ip_address(found)
    # An IPv4 client on a dual-stack socket arrives as ::ffff:a.b.c.d.
    mapped = getattr(address, "ipv4_mapped", None)
    return any(address in net or (mapped is not None and mapped in net)
               for net in settings.METRICS_ALLOW)


def has_token(request: HttpRequest) -> bool:
    """``Authorization: Bearer <RELATCH_METRICS_TOKEN>``, compared in constant time; no token
    is accepted while the setting is empty."""
    token = settings.METRICS_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if not token or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def may_read_metrics(request: HttpRequest) -> bool:
    return from_allowed_network(request) or has_token(request)
