"""A PostgreSQL restart under a running ``relatch serve`` (issue 18 §1).

Before, the worker died on the first database error and ``relatch serve`` then stopped the
web server too: after a 30 s PostgreSQL restart none of 419 requests succeeded in the next
60 s. Here a real ``relatch serve`` runs on a PostgreSQL server of the test's own
(tests/private_postgres.py: the suite's server is shared and must not be restarted), which
the test stops for a few seconds and starts again on the same port. The service must answer
again soon after, with the same processes, and the worker must run tasks queued afterwards,
having said once that the database was away.
"""

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests import private_postgres
from tests.conftest import Mailbox
from tests.private_postgres import PrivatePostgres
from tests.serving import Poller, Server, direct_children, is_running, running_server, wait_for

# Its databases are its own (SQLite files, PostgreSQL databases it makes): the suite's
# database does not change what it tests, so CI's PostgreSQL pass leaves it out.
pytestmark = [pytest.mark.slow, pytest.mark.own_database]

# Long enough for every process to meet the outage (the worker looks for tasks every second,
# the poller asks for a page every 0.1 s) and to retry a few times with back-off; far shorter
# than the 30 s, which would only make the suite slower.
OUTAGE = 6.0
# After PostgreSQL is back: the worker's back-off is at most 10 s (relatch.notify.worker),
# the web server reconnects at its next request; the rest is margin for a loaded machine.
RECOVERY = 30.0


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    if reason := private_postgres.available():
        pytest.skip(reason)
    with private_postgres.private_postgres() as server:
        yield server


def child(server: Server, kind: str) -> int | None:
    """The pid of the child of ``relatch serve`` whose command line contains ``kind``."""
    found = [pid for pid, command in direct_children(server.process.pid).items()
             if kind in command]
    return found[0] if found else None


def test_postgresql_restarts_are_waited_out_by_the_web_server_and_the_worker(
    tmp_path: Path, postgres: PrivatePostgres, mail: Mailbox
) -> None:
    url = postgres.create_database("relatch")
    with running_server(tmp_path, RELATCH_DATABASE_URL=url,
                        RELATCH_EMAIL_URL=f"smtp://127.0.0.1:{mail.port}") as server:
        web, worker = child(server, "gunicorn"), child(server, "db_worker")
        assert web and worker, server.output()
        # The worker ran tasks before the outage: it is past its start and in its loop.
        assert server.relatch("sendtestmail", "before@example.org").returncode == 0
        assert wait_for(lambda: mail.to("before@example.org"), 30), server.output()

        # 1. A restart while nobody uses the site (a night's maintenance). Every thread of
        # the web server keeps its connection for the next request (CONN_MAX_AGE): a burst of
        # parallel requests, more than its 8 threads, gives each one. The restart closes them
        # all, and no request comes to notice: the next requests must reconnect, not fail.
        assert parallel_gets(server, 24) == [200] * 24
        postgres.stop("fast")  # ends every session, as an operator's restart does
        assert wait_for(lambda: server.output().count("Database unavailable") == 1, 20), (
            server.output())
        postgres.start()
        statuses = parallel_gets(server, 24)
        assert statuses == [200] * 24, f"{statuses}\n{server.output()}"
        assert wait_for(lambda: "Database available again after" in server.output(), RECOVERY)

        # 2. A restart of OUTAGE seconds under steady traffic.
        with Poller(server) as poller:
            assert wait_for(lambda: poller.answered_since(0), 30), poller.statuses()
            stopped_at = time.monotonic()
            postgres.stop("fast")
            # Every part of the service meets the outage: pages fail, the worker notices.
            assert wait_for(lambda: poller.failed_since(stopped_at), 20), poller.statuses()
            assert wait_for(lambda: server.output().count("Database unavailable") == 2, 20), (
                server.output())
            # The outage lasts OUTAGE seconds whatever the machine's speed: that is the
            # scenario, not a wait for something to happen.
            time.sleep(max(0.0, stopped_at + OUTAGE - time.monotonic()))
            postgres.start()
            restarted_at = time.monotonic()

            assert wait_for(lambda: poller.answered_since(restarted_at), RECOVERY), (
                f"{poller.statuses()}\n{server.output()}")
            first_answer = min(at for at, status in poller.seen
                               if at > restarted_at and status == 200)
            # Then every request is answered: a few more turns of the poller, and a burst.
            assert parallel_gets(server, 24) == [200] * 24
            assert wait_for(lambda: sum(at > first_answer for at, _ in poller.seen) >= 10, 20)
        assert not poller.failed_since(first_answer), poller.seen
        # During the outage the pages said "briefly unavailable" (503), not "broken" (500),
        # and the log has a line per outage, not a traceback per request.
        statuses = poller.statuses()
        assert 503 in statuses and 500 not in statuses, statuses
        assert "Internal Server Error" not in server.output()
        assert "requests get 503" in server.output()

        # The same processes: nothing died, nothing was restarted.
        assert server.process.poll() is None
        assert child(server, "gunicorn") == web and child(server, "db_worker") == worker
        assert is_running(web) and is_running(worker)
        assert "restarting it in" not in server.output()

        # A task queued after the restart runs: the worker is back in its loop.
        assert server.relatch("sendtestmail", "after@example.org").returncode == 0
        assert wait_for(lambda: mail.to("after@example.org"), RECOVERY), server.output()
        log = server.output()
        # One line when an outage starts and one when it ends, not one per retry.
        assert log.count("Database unavailable") == 2, log
        assert log.count("Database available again after") == 2, log
    assert server.process.returncode == 0


def parallel_gets(server: Server, count: int) -> list[int | str]:
    """``count`` GETs of the home page at once; their statuses (the error's name for none)."""

    def get(_: int) -> int | str:
        try:
            return server.get("/")[0]
        except OSError as error:
            return type(error).__name__

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(get, range(count)))
