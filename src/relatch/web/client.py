"""Who is on the other end of a request: address and user agent, proxy-aware."""

from ipaddress import ip_address

from django.conf import settings
from django.http import HttpRequest

MAX_USER_AGENT = 512


def client_ip(request: HttpRequest) -> str | None:
    """The client's IP address.

    X-Forwarded-For is trusted only for the configured number of proxies, counted from the
    right, so a client cannot pick its own address to dodge per-IP limits.
    """
    proxies = settings.RELATCH_PROXY_COUNT
    candidate = request.META.get("REMOTE_ADDR", "")
    if proxies:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h]
        if len(hops) >= proxies:
            candidate = hops[-proxies]
    try:
        return str(ip_address(candidate))
    except ValueError:
        return None


def client_user_agent(request: HttpRequest) -> str:
    return str(request.META.get("HTTP_USER_AGENT", ""))[:MAX_USER_AGENT]
