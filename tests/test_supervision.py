"""``relatch serve``'s supervisor: a dead child comes back, with back-off (issue 18 §1).

The children here are tiny real processes (``python -c``) standing in for gunicorn and the
worker, with delays of a few hundredths of a second: what is checked is the supervisor's
policy (who is restarted, when, what is said, when it gives up), not the children.
``tests/test_cli.py`` and ``tests/test_database_outage.py`` check it on a real ``relatch
serve``, and the end of this file checks how a real one stops: TERM lets the uploads in flight
finish, up to RELATCH_GRACEFUL_TIMEOUT (issue 18 §10).
"""

import signal
import socket
import sys
import time
from pathlib import Path

import pytest

from relatch.supervision import Backoff, Supervisor, describe_exit
from tests.serving import is_running, running_server, wait_for
from tests.test_faults import FILES, UPLOADER, big_wheel, shell, start_upload

# Its databases are its own (SQLite files, PostgreSQL databases it makes): the suite's
# database does not change what it tests, so CI's PostgreSQL pass leaves it out.
pytestmark = [pytest.mark.slow, pytest.mark.own_database]

QUICK = Backoff(first=0.05, most=0.2, steady_after=1.0)


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def tend_until(supervisor: Supervisor, condition, timeout: float = 20) -> bool:  # type: ignore[no-untyped-def]
    """Run the supervisor's loop by hand until ``condition()``."""
    def step() -> bool:
        supervisor.tend()
        return bool(condition())

    return bool(wait_for(step, timeout, interval=0.01))


def test_back_off_doubles_from_one_second_to_a_minute() -> None:
    assert [Backoff().delay(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]


def test_exits_are_described_as_an_operator_reads_them() -> None:
    assert describe_exit(3) == "exited with status 3"
    assert describe_exit(-signal.SIGKILL) == "was killed by SIGKILL"


def test_a_child_that_keeps_dying_is_restarted_for_ever_with_growing_delays(capsys) -> None:
    supervisor = Supervisor(backoff=QUICK)
    supervisor.start({"worker": python("import sys; sys.exit(3)")})
    child = supervisor.children[0]
    assert tend_until(supervisor, lambda: child.restarts >= 6)
    assert supervisor.running() and not supervisor.gave_up
    err = capsys.readouterr().err
    delays = [line.split("restarting it in ")[1].split(" s")[0]
              for line in err.splitlines() if "restarting it in" in line]
    assert delays[:6] == ["0.05", "0.1", "0.2", "0.2", "0.2", "0.2"]
    assert "relatch serve: the worker exited with status 3 after 0 s;" in err
    assert "relatch serve: restarted the worker (pid " in err
    assert supervisor.shutdown() == 1  # nobody asked it to stop


def test_a_child_that_ran_steadily_before_dying_starts_over_at_the_first_delay(capsys) -> None:
    supervisor = Supervisor(backoff=Backoff(first=0.05, most=10, steady_after=0.3))
    supervisor.start({"worker": python("import time; time.sleep(0.4)")})
    child = supervisor.children[0]
    assert tend_until(supervisor, lambda: child.restarts >= 3)
    assert child.failures == 1
    delays = [line.split("restarting it in ")[1].split(" s")[0]
              for line in capsys.readouterr().err.splitlines() if "restarting it in" in line]
    assert delays == ["0.05", "0.05", "0.05"]
    supervisor.request_stop()
    assert supervisor.shutdown() == 0


def test_the_web_server_dying_at_every_start_is_given_up_with_a_clear_message(capsys) -> None:
    """A web server that cannot stay up (a broken set-up) stops the service with status 1,
    so that systemd's Restart= takes over; the worker beside it is stopped too."""
    supervisor = Supervisor(backoff=QUICK, essential_restarts=3, stop_timeout=5)
    supervisor.start({"web server": python("import sys; sys.exit(1)"),
                      "worker": python("import time; time.sleep(60)")}, essential="web server")
    worker = supervisor.children[1].pid
    started = time.monotonic()
    assert supervisor.supervise() == 1
    assert time.monotonic() - started < 10
    err = capsys.readouterr().err
    assert err.count("restarted the web server") == 3
    assert ("the web server exited with status 1 after 0 s, 4 times in a row within 1 s of its "
            "start; giving up and stopping everything") in err
    assert worker is not None and not is_running(worker)


def test_the_leftovers_of_a_dead_child_are_killed_before_it_is_started_again(
    tmp_path: Path,
) -> None:
    """gunicorn's web workers outlive a killed master and keep its port: they are ended."""
    pid_file = tmp_path / "orphan.pid"
    spawn = ("import subprocess, sys; p = subprocess.Popen(['sleep', '60']); "
             f"open({str(pid_file)!r}, 'w').write(str(p.pid)); sys.exit(1)")
    supervisor = Supervisor(backoff=Backoff(first=30))
    supervisor.start({"web server": python(spawn)}, essential="web server")
    child = supervisor.children[0]
    assert tend_until(supervisor, lambda: child.restarts == 1)
    orphan = int(pid_file.read_text())
    assert wait_for(lambda: not is_running(orphan), 5)
    supervisor.request_stop()
    assert supervisor.shutdown() == 0


def test_a_stop_reaches_every_child_and_a_child_that_ignores_it_is_killed(
    tmp_path: Path,
) -> None:
    ready = tmp_path / "ready"
    stubborn = python("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                      f"open({str(ready)!r}, 'w').close(); time.sleep(60)")
    supervisor = Supervisor(stop_timeout=0.5)
    supervisor.start({"worker": python("import time; time.sleep(60)"), "listener": stubborn})
    assert wait_for(ready.exists, 10)  # the stubborn child ignores TERM from now on
    supervisor.request_stop()
    started = time.monotonic()
    assert supervisor.shutdown() == 1  # one child did not obey
    assert time.monotonic() - started < 5
    assert all(c.process and c.process.returncode is not None for c in supervisor.children)


# --- a real relatch serve stopping with an upload in flight -------------------------------


def refuses(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    return False


def test_a_stop_lets_an_upload_whose_body_is_still_arriving_finish(tmp_path: Path) -> None:
    """Issue 18 §10: a restart cut uploads longer than 10 s. Now TERM stops new connections
    but the web worker keeps reading the bodies already arriving, serves them, and only then
    exits; ``relatch serve`` exits 0 once it has."""
    graceful = 20
    with running_server(tmp_path, RELATCH_GRACEFUL_TIMEOUT=str(graceful)) as server:
        token = shell(server, UPLOADER)["token"]
        # The web worker has loaded the application and runs its loop: "running" is said once
        # gunicorn listens, and a connection made while its worker still boots waits in the
        # listening socket's backlog, which a stop closes (the client gets a reset).
        assert server.get("/")[0] == 200
        dist = big_wheel()  # 4 MB: read into a temporary file, not memory
        conn, rest = start_upload(server, token, dist)  # the header and half of the body
        server.process.send_signal(signal.SIGTERM)
        stopped_at = time.monotonic()
        assert wait_for(lambda: "Handling signal: term" in server.output(), 10), server.output()
        # A new connection is refused at once (nginx then asks another host), not left in a
        # listening socket nobody accepts from until the worker exits.
        assert wait_for(lambda: refuses(server.port), 10), server.output()
        # The rest of the body comes after gunicorn passed the stop on to its worker, in
        # pieces over 3 s: the client is slow, as a large upload on a slow link is.
        pieces = 6
        size = -(-len(rest) // pieces)
        for start in range(0, len(rest), size):
            time.sleep(0.5)
            try:
                conn.send(rest[start:start + size])
            except OSError as error:
                raise AssertionError(f"cut after {time.monotonic() - stopped_at:.1f} s "
                                     f"({error}):\n{server.output()}") from error
        response = conn.getresponse()
        answer = response.read()
        conn.close()
        answered_at = time.monotonic()
        assert response.status == 200, answer[:500]
        assert server.process.wait(timeout=graceful + 15) == 0, server.output()
        assert answered_at - stopped_at < graceful
        # The worker exited after it answered, not when it was told to stop.
        log = server.output()
        assert log.index("Handling signal: term") < log.index('"POST /legacy/ HTTP/1.1" 200')
        assert log.index('"POST /legacy/ HTTP/1.1" 200') < log.index("Worker exiting")
    assert dist.filename in shell(server, FILES)["files"]  # published, kept after the stop


def test_a_stop_cuts_what_is_still_in_flight_after_the_graceful_timeout(tmp_path: Path) -> None:
    """The wait has a limit: a body that never ends does not hold the stop for ever."""
    graceful = 2
    with running_server(tmp_path, RELATCH_GRACEFUL_TIMEOUT=str(graceful)) as server:
        assert server.get("/")[0] == 200  # the web worker runs its loop
        conn, _rest = start_upload(server, "not-a-token", big_wheel())  # never finished
        stopped_at = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        status = server.process.wait(timeout=graceful + 20)
        took = time.monotonic() - stopped_at
        # The request was cut, not answered: the connection is closed without a response.
        with pytest.raises(OSError):  # RemoteDisconnected or ConnectionResetError
            conn.getresponse()
        conn.close()
    # The worker gives up the request after ``graceful`` seconds and exits; gunicorn and then
    # ``relatch serve`` follow at once, and the stop is still a clean one.
    assert graceful <= took < graceful + 10, f"stopped after {took:.1f} s"
    assert status == 0, server.output()
