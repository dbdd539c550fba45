"""Redis stops under a running ``relatch serve`` and starts again (issue 18 §9).

Before, every sign-in was a 500 (24 of 24) and half the /simple/ reads failed while Redis was
down for 25 s: redis-py retried each refused connection for ~9 s, then raised. Here a real
``relatch serve`` with two web processes uses a Redis server of the test's own
(tests/signin_load.py), which the test kills and starts again on the same port. Meanwhile
browsers sign in, ask for a password reset (a rate limit kept in Redis) and read /simple/:
nothing may fail, each process logs once that Redis is away and once that it is back, and
afterwards the cache is in Redis again.
"""

import re
import time
from pathlib import Path

import pytest
import requests

from tests.serving import Poller, Server, running_server, wait_for
from tests.signin_load import (
    PASSWORD,
    create_accounts,
    new_browser,
    quick_hasher_env,
    redis_server,
    sign_in_at_once,
    tally,
)

# Its databases are its own (SQLite files, PostgreSQL databases it makes): the suite's
# database does not change what it tests, so CI's PostgreSQL pass leaves it out.
pytestmark = [pytest.mark.slow, pytest.mark.own_database]

OUTAGE = 5.0  # long enough for both processes to meet it; the 25 s only costs time
DOWN = re.compile(r"Redis at 127\.0\.0\.1:\d+ does not answer")
BACK = re.compile(r"Redis at 127\.0\.0\.1:\d+ answers again")


def ask_for_reset(server: Server) -> int:
    """A password reset request from a new browser: the reset form counts it in a rate limit."""
    browser = new_browser()
    form = browser.get(server.url + "/account/reset/", timeout=30)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
    assert token, form.status_code
    data = {"csrfmiddlewaretoken": token.group(1), "identifier": "alice"}
    try:
        response = browser.post(server.url + "/account/reset/", data=data, timeout=30,
                                allow_redirects=False)
    except requests.RequestException:
        return 0
    return response.status_code


def test_sign_in_and_installs_carry_on_while_redis_is_down(tmp_path: Path) -> None:
    quick = quick_hasher_env(tmp_path / "settings")
    with (
        redis_server(tmp_path) as redis,
        running_server(tmp_path, RELATCH_REDIS_URL=redis.url, RELATCH_WEB_WORKERS="2",
                       **quick) as server,
    ):
        create_accounts(server, ["alice"])
        assert tally(sign_in_at_once(server, [("alice", PASSWORD)] * 4)) == {"signed in": 4}
        assert server.get("/simple/")[0] == 200
        assert ask_for_reset(server) < 400
        assert redis.keys("LIMITS:*"), "the reset's rate limit is not counted in Redis"

        with Poller(server, "/simple/") as poller:
            redis.stop()
            stopped = time.monotonic()
            # Right and wrong passwords from new browsers, and reset requests, while it is down.
            attempts = [("alice", PASSWORD)] * 6 + [("alice", "not the password")] * 2
            during = sign_in_at_once(server, attempts)
            resets = [ask_for_reset(server) for _ in range(2)]
            time.sleep(max(OUTAGE - (time.monotonic() - stopped), 0))
            redis.start()
            restarted = time.monotonic()
            after = sign_in_at_once(server, [("alice", PASSWORD)] * 4)
            resets_after = [ask_for_reset(server) for _ in range(2)]
            assert wait_for(lambda: poller.answered_since(restarted + 1), 20)

        assert tally(during) == {"signed in": 6, "wrong": 2}, server.output()[-3000:]
        assert all(0 < status < 400 for status in resets + resets_after), (resets, resets_after)
        assert tally(after) == {"signed in": 4}
        statuses = poller.statuses()
        assert set(statuses) == {200}, statuses
        assert sum(1 for at, _ in poller.seen if stopped < at < restarted) >= 10
        # Once per process that met the outage (two web processes, and the worker sending the
        # reset links), not once per request.
        log = server.output()
        assert 1 <= len(DOWN.findall(log)) <= 3, log[-3000:]
        # Redis is used again: the limits count there, and the processes said it was back.
        assert wait_for(lambda: ask_for_reset(server) and redis.keys("LIMITS:*"), 20)
        assert BACK.search(server.output()), server.output()[-3000:]
