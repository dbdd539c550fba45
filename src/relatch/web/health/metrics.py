"""The metric instruments counted while requests and tasks run (``relatch.ops`` says how the
web processes' counts are summed, and exports them at /metrics).

Every label has a bounded set of values (URL names, status classes, event kinds): a label
taken from a request's path or a user's input would grow the series without end. Recording
must cost next to nothing on the installer path, so each (route, status class) pair binds its
children once and later requests reuse them without ``labels()``'s validation and lock.
"""

from django.db import transaction
from prometheus_client import Counter, Histogram

REQUESTS = Counter(
    "relatch_http_requests", "HTTP requests answered, by URL name and status class.",
    ["route", "status"],
)
# Requests Django answers, from a lean installer page (about a millisecond) to a large upload.
# Kept pages are counted in REQUESTS but not timed (relatch.index.simple.response_cache).
LATENCY = Histogram(
    "relatch_http_request_duration_seconds",
    "Time from a request's arrival in the application to its response, by URL name.",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
KEPT_PAGES = Counter(
    "relatch_kept_pages", "Index pages and files asked of the kept responses "
    "(relatch.index.simple.response_cache): hit = sent without entering Django.",
    ["outcome"],
)
KEPT_HIT = KEPT_PAGES.labels(outcome="hit")
KEPT_MISS = KEPT_PAGES.labels(outcome="miss")
SECURITY_EVENTS = Counter(
    "relatch_security_events", "Security events recorded (sign-ins, failures, recovery, "
    "factor changes, tokens), by kind.", ["kind"],
)

UNMATCHED = "unmatched"  # no URL matched (404), or a middleware answered before resolving

_bound: dict[tuple[str, int], tuple[Counter, Histogram]] = {}


def status_class(status: int) -> str:
    return f"{status // 100}xx"


def observe_request(route: str, status: int, seconds: float) -> None:
    """Count one answered request and its duration."""
    key = (route, status // 100)
    children = _bound.get(key)
    if children is None:
        children = (REQUESTS.labels(route=route, status=status_class(status)),
                    LATENCY.labels(route=route))
        _bound[key] = children  # a race only binds the same children twice
    children[0].inc()
    children[1].observe(seconds)


_counted: dict[tuple[str, str], Counter] = {}


def count_request(route: str, status_line: str) -> None:
    """Count one request answered outside Django (a kept page), from its WSGI status line."""
    child = _counted.get((route, status_line))
    if child is None:
        child = REQUESTS.labels(route=route, status=f"{status_line[:1]}xx")
        _counted[(route, status_line)] = child
    child.inc()


def count_security_event(kind: str) -> None:
    """Count a security event once its transaction commits: a refused change leaves no row,
    so it must leave no count either."""
    transaction.on_commit(SECURITY_EVENTS.labels(kind=kind).inc)
