"""Where a page sends the person afterwards: ``next``, a path on this site and nothing else.

A wall (a page that needs two-step sign-in first) sends people through other pages and back:

    setup = with_next(reverse("mfa:overview"), request.get_full_path())
    ...
    return redirect(local_next(request.POST.get("next")) or "totp:setup")

Only local paths pass: ``//evil.example/`` and ``https://evil.example/`` are refused, so a link
crafted by someone else cannot turn our pages into an open redirect to a look-alike site
(OWASP unvalidated redirects; ASVS 5.1.5).
"""

from urllib.parse import urlencode

from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme

MAX_NEXT_LENGTH = 2000


def local_next(candidate: object) -> str:
    """``candidate`` when it is a path on this site; else ""."""
    if not isinstance(candidate, str) or len(candidate) > MAX_NEXT_LENGTH:
        return ""
    # allowed_hosts=None allows no host at all: "//evil.example" and "/\evil.example" (which
    # browsers read as another host) fail here, as do schemes such as javascript:.
    if not candidate.startswith("/") or not url_has_allowed_host_and_scheme(candidate, None):
        return ""
    return candidate


def requested_next(request: HttpRequest) -> str:
    """The local ``next`` of a form sent (POST) or a link followed (GET); else ""."""
    return local_next(request.POST.get("next") or request.GET.get("next"))


def with_next(url: str, next_url: str) -> str:
    """``url`` coming back to ``next_url`` afterwards (unchanged when there is no safe one)."""
    safe = local_next(next_url)
    if not safe:
        return url
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}{urlencode({'next': safe})}"
