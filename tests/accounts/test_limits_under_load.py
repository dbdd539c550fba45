"""Sign-in limits under parallel load, against a real ``relatch serve`` with several web
processes and no Redis (issue 18 §8; NIST SP 800-63B-4 §3.2.2 / N20, ASVS 6.1.1, 6.3.1).

- Right passwords from new browsers are never refused because others sign in at the same
  moment: 36 browsers sign in to one account at once and all get in (the fault tests saw 12 of
  36 refused: attempts still being checked looked like failures to the others).
- The per-IP limit of 30 failures lets exactly 30 wrong passwords be checked when 60 arrive at
  once over three processes (the fault tests saw 35–42 with one process and 85 with three:
  each process kept its own count, and a check and its count were two steps).
- Limits count failures only: the 36 successes before the 60 wrong attempts take nothing from
  the IP's 30.

What is measured: each answer (302 into the account, 200 "Username or password is wrong"
after a checked password, 429 refused unchecked), the SIGNIN_FAILED events written and the
IP's counter in the database.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serving import running_server
from tests.signin_load import (
    PASSWORD,
    create_accounts,
    fresh_postgres_database,
    quick_hasher_env,
    shell,
    sign_in_at_once,
    tally,
)

# Its databases are its own (SQLite files, PostgreSQL databases it makes): the suite's
# database does not change what it tests, so CI's PostgreSQL pass leaves it out.
pytestmark = [pytest.mark.slow, pytest.mark.own_database]

BROWSERS = 36
WRONG_ATTEMPTS = 60
IP_LIMIT = 30  # relatch.accounts.passwords.throttling.IP_LIMIT: "30/15 minutes"
WEB_PROCESSES = "3"


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """The server's database: SQLite in its data directory, or a PostgreSQL database of its own."""
    if request.param == "sqlite":
        yield {}
        return
    with fresh_postgres_database() as url:
        yield {"RELATCH_DATABASE_URL": url}


def test_parallel_right_passwords_all_sign_in_and_the_ip_limit_is_exact(
    tmp_path: Path, database: dict[str, str]
) -> None:
    quick = quick_hasher_env(tmp_path / "settings")  # ~130 password checks: not 100 MB each
    with running_server(
        tmp_path, RELATCH_WEB_WORKERS=WEB_PROCESSES, **database, **quick
    ) as server:
        existing = [f"member{n}" for n in range(WRONG_ATTEMPTS // 2)]
        create_accounts(server, ["alice", *existing])

        # 36 new browsers, one account, the right password, all at once.
        answers = sign_in_at_once(server, [("alice", PASSWORD)] * BROWSERS)
        assert tally(answers) == {"signed in": BROWSERS}

        # 60 wrong passwords at once from the same address, over three processes: half name
        # existing accounts, half nobody (each a different name, so no account's own back-off
        # plays a part). Exactly the limit is checked; the rest are refused unchecked.
        names = existing + [f"nobody{n}" for n in range(WRONG_ATTEMPTS // 2)]
        answers = sign_in_at_once(server, [(name, "not the password") for name in names])
        assert tally(answers) == {"wrong": IP_LIMIT, "429 ip": WRONG_ATTEMPTS - IP_LIMIT}

        # The events written agree: one SIGNIN_FAILED per checked wrong password of an existing
        # account, one SIGNIN_THROTTLED per refused one; and the IP's counter holds 30.
        wrong_names = {name for name, answer in zip(names, answers, strict=True)
                       if answer.checked_and_wrong}
        events = shell(server, (
            "from relatch.audit.models import SecurityEvent as E\n"
            "print(E.objects.filter(kind='signin_failed').count(), "
            "E.objects.filter(kind='signin_throttled').count(), "
            "E.objects.filter(kind='signin_succeeded').count())"
        ))
        failed, throttled, succeeded = (int(n) for n in events.split())
        assert failed == len(wrong_names & set(existing))
        assert throttled == len(set(existing) - wrong_names)
        assert succeeded == BROWSERS
        # The address has used its 30: now even a right password from a new browser waits.
        answers = sign_in_at_once(server, [("alice", PASSWORD)])
        assert tally(answers) == {"429 ip": 1}
