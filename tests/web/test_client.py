"""Who is on the other end: the client IP a per-IP limit and the history use."""

import pytest
from django.test import RequestFactory

from relatch.web.client import MAX_USER_AGENT, client_ip, client_user_agent


@pytest.mark.parametrize(
    ("proxies", "remote", "forwarded", "expected"),
    [
        (0, "203.0.113.7", "", "203.0.113.7"),
        # Without a configured proxy the header is the client's own words: ignored.
        (0, "203.0.113.7", "198.51.100.1", "203.0.113.7"),
        # One proxy appends the address it saw: the right-most entry, not a spoofed left one.
        (1, "10.0.0.2", "198.51.100.1, 203.0.113.7", "203.0.113.7"),
        (2, "10.0.0.2", "198.51.100.1, 203.0.113.7, 10.0.0.9", "203.0.113.7"),
        # Fewer hops than proxies: the header is not trusted.
        (2, "10.0.0.2", "203.0.113.7", "10.0.0.2"),
        (1, "10.0.0.2", "not-an-ip", None),
        (0, "2001:db8::1", "", "2001:db8::1"),
        (0, "", "", None),
    ],
)
def test_client_ip_trusts_only_the_configured_proxies(settings, proxies, remote, forwarded,
                                                      expected):
    """ASVS 6.3.1: per-IP limits need an address the client cannot choose."""
    settings.RELATCH_PROXY_COUNT = proxies
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected


def test_user_agent_is_cut_to_the_stored_length():
    request = RequestFactory().get("/", HTTP_USER_AGENT="x" * 5000)
    assert client_user_agent(request) == "x" * MAX_USER_AGENT
    assert client_user_agent(RequestFactory().get("/")) == ""
