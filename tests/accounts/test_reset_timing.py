"""The password-reset request takes as long for an existing account as for an unknown one
(issue 7 §3; OWASP Forgot Password: "consistent response time"; ASVS 6.3.8).

The page is already the same either way; here the clock is the attacker's instrument. Requests
of both kinds run in pairs, back to back in a random order (so the load of the moment hits
both alike), through Django's test client with real commits; the median of the paired
differences must be within what the measured noise allows. A busy, shared machine gets three
tries before a failure.
"""

import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.core.cache import cache
from django.http import HttpResponse
from django.test import Client
from django_tasks_db.models import DBTaskResult

from relatch.accounts import ratelimit
from relatch.notify.models import OutgoingEmail
from tests.conftest import run_pending_tasks
from tests.full_checks import FULL

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
PAIRS = 400 if FULL else 60
RESET = "/account/reset/"


@dataclass(frozen=True)
class Comparison:
    """Paired timings (seconds): ``known[i]`` and ``unknown[i]`` ran back to back."""

    known: list[float]
    unknown: list[float]

    @property
    def differences(self) -> list[float]:
        return [k - u for k, u in zip(self.known, self.unknown, strict=True)]

    @property
    def difference(self) -> float:
        """The median of the paired differences: the two requests of a pair share the
        machine's load of that moment, which cancels out, and the median ignores the pairs
        in which one request was preempted."""
        return statistics.median(self.differences)

    @property
    def tolerance(self) -> float:
        """Four standard errors of that median (bootstrapped: how much it moves when the same
        pairs are resampled), and never under 10 % of the faster request's median: equal
        work is not equal to the microsecond."""
        rng = random.Random(0)
        differences = self.differences
        resampled = [statistics.median(rng.choices(differences, k=len(differences)))
                     for _ in range(300)]
        floor = 0.1 * min(statistics.median(self.known), statistics.median(self.unknown))
        return max(4 * statistics.stdev(resampled), floor)

    @property
    def within_noise(self) -> bool:
        return abs(self.difference) <= self.tolerance

    def describe(self) -> str:
        ms = 1000
        return (f"known {statistics.median(self.known) * ms:.2f} ms, unknown "
                f"{statistics.median(self.unknown) * ms:.2f} ms (medians), paired difference "
                f"{self.difference * ms:+.2f} ms, tolerance {self.tolerance * ms:.2f} ms, "
                f"{len(self.known)} pairs")


Send = Callable[[], object]


def compare(known: Callable[[], Send], unknown: Callable[[], Send], *, pairs: int,
            seed: int) -> Comparison:
    """Time ``pairs`` pairs of requests, one of each kind back to back in a random order,
    after a warm-up. ``known()`` and ``unknown()`` prepare one request (untimed: reset
    limits, make rows) and return the call to time."""
    for prepare in (known, unknown, known, unknown):  # warm-up: caches, templates, connections
        prepare()()
    rng = random.Random(seed)
    samples: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(pairs):
        for is_known in rng.sample([True, False], 2):
            send = (known if is_known else unknown)()
            started = time.perf_counter()
            send()
            samples[is_known].append(time.perf_counter() - started)
    return Comparison(known=samples[True], unknown=samples[False])


def assert_within_noise(known: Callable[[], Send], unknown: Callable[[], Send], *,
                        pairs: int = PAIRS, tries: int = 3) -> Comparison:
    """Pass as soon as one comparison is within noise; fail with every try's figures."""
    seen: list[str] = []
    for attempt in range(tries):
        result = compare(known, unknown, pairs=pairs, seed=attempt)
        if result.within_noise:
            return result
        seen.append(result.describe())
    raise AssertionError("timing tells the two apart:\n" + "\n".join(seen))


def expect(response: HttpResponse, status: int) -> HttpResponse:
    assert response.status_code == status, response.content[:200]
    return response


def fresh_limits() -> None:
    """Every timed request is the first in the hour: no rate limit cuts a path short."""
    ratelimit.reset_all()
    cache.clear()


@pytest.mark.parametrize("identifier", ["address", "username"])
def test_reset_takes_as_long_for_an_unknown_account(make_user, identifier):
    user = make_user(username="alice", email="alice@example.org")
    known = "alice@example.org" if identifier == "address" else user.username
    unknown = "nobody@example.org" if identifier == "address" else "nobody"
    browser = Client()

    def ask(who: str) -> Callable[[], Send]:
        def prepare() -> Send:
            fresh_limits()
            return lambda: expect(browser.post(RESET, {"identifier": who}), 200)
        return prepare

    result = assert_within_noise(ask(known), ask(unknown))
    # Both kinds queued the same background work, one task per request...
    queued = DBTaskResult.objects.filter(task_path__endswith="send_reset_link").count()
    assert queued >= 2 * len(result.known)
    # ...which mails the account that exists (its own limit: 3 an hour) and no one else.
    fresh_limits()
    run_pending_tasks(limit=queued)
    assert OutgoingEmail.objects.filter(to="alice@example.org").count() == 3
    assert not OutgoingEmail.objects.filter(to="nobody@example.org").exists()
