"""The ``relatch`` command: serve, the worker it starts, createstaff and demo (issue 2 §3)."""

import io
import os
import signal
import socket
import subprocess
import time

import pytest
from django.core.management import CommandError, call_command

from relatch import cli
from relatch.accounts.models import Email, User
from relatch.audit.models import EventKind, SecurityEvent
from tests.conftest import PASSWORD
from tests.serving import (
    RELATCH,
    Poller,
    direct_children,
    is_running,
    relatch_env,
    running_server,
    wait_for,
)

SECRET_TOKEN = "MQ:1uRz7x:Qk3bQ2m4v0sSecretSecret"
# The in-process demo runs store demo-hello's wheels: in each test's own directory.
pytestmark = pytest.mark.usefixtures("files_dir")

# ---------------------------------------------------------------------------------------------
# relatch serve


@pytest.mark.own_database
@pytest.mark.slow
def test_serve_creates_data_dir_answers_over_http_and_stops_on_sigterm(tmp_path):
    """Issue 2 §3: the embedded defaults need nothing; TERM stops the server and its children."""
    with running_server(tmp_path) as server:
        assert (server.data_dir / "relatch.sqlite3").is_file()
        assert (server.data_dir / "secret_key").is_file()
        assert server.url == f"http://localhost:{server.port}"
        assert f"{server.url}/dev/outbox/" in server.output()

        status, body, headers = server.get("/")
        assert status == 200 and b"Relatch" in body
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        status, body, headers = server.get("/static/relatch/site.css")
        assert status == 200 and b".site-header" in body
        assert headers["Content-Type"].startswith("text/css")
        # DEBUG is off by default: Relatch's own 404 page, not Django's debug page.
        status, body, _ = server.get("/no-such-page/")
        assert status == 404 and b"Page not found" in body and b"URLconf" not in body
        # Secrets never reach a log: the access log shows a token path redacted.
        server.get(f"/account/reset/{SECRET_TOKEN}/")
        # Without RELATCH_EMAIL_URL the worker writes mail to the outbox page.
        assert server.relatch("sendtestmail", "grace@example.org").returncode == 0
        assert wait_for(lambda: b"grace@example.org" in server.get("/dev/outbox/")[1], 45)
        assert len(list((server.data_dir / "outbox").glob("*.eml"))) == 1

        children = server.children()
        assert len(children) >= 3  # gunicorn master, its worker, the task worker
        started = time.monotonic()
        assert server.stop(timeout=20) == 0
        assert time.monotonic() - started < 20
        assert wait_for(lambda: not any(is_running(pid) for pid in children), 20), (
            f"left running: {[pid for pid in children if is_running(pid)]}"
        )
        assert '"GET /account/reset/[redacted]/ HTTP/1.1"' in server.output()
        assert SECRET_TOKEN not in server.output()


@pytest.mark.own_database
@pytest.mark.slow
def test_the_worker_started_by_serve_delivers_mail_over_smtp(tmp_path, mail):
    """Issue 2 §9: mail queued by any process is sent by serve's worker to RELATCH_EMAIL_URL."""
    email_url = f"smtp://127.0.0.1:{mail.port}"
    with running_server(tmp_path, RELATCH_EMAIL_URL=email_url) as server:
        assert "/dev/outbox/" not in server.output()
        status, _, _ = server.get("/dev/outbox/")
        assert status == 404  # the outbox page exists only without SMTP

        done = server.relatch("sendtestmail", "grace@example.org")
        assert done.returncode == 0, done.stderr
        arrived = wait_for(lambda: mail.to("grace@example.org"), timeout=45)
        assert arrived, f"no mail arrived; server said:\n{server.output()}"
        assert "test message from Relatch" in mail.text(arrived[0])
        assert not list((server.data_dir / "outbox").glob("*.eml"))


@pytest.mark.parametrize(
    ("host", "base_url"),
    [
        ("0.0.0.0", "http://localhost:9000"),  # noqa: S104  (a name here, nothing is bound)
        ("::", "http://localhost:9000"),
        ("127.0.0.1", "http://localhost:9000"),
        ("localhost", "http://localhost:9000"),
        ("2001:db8::5", "http://[2001:db8::5]:9000"),
    ],
)
def test_serve_names_an_address_a_browser_can_use(host, base_url):
    """A wildcard address is no URL; without RELATCH_BASE_URL, the loopback one is used."""
    assert cli._default_base_url(host, 9000) == base_url


@pytest.mark.parametrize(
    ("host", "given", "warnings"),
    [
        ("127.0.0.1", False, []),
        ("0.0.0.0", False, ["set RELATCH_BASE_URL", "outbox page is reachable"]),  # noqa: S104
        ("0.0.0.0", True, ["outbox page is reachable"]),  # noqa: S104
        ("192.0.2.10", True, ["outbox page is reachable"]),
    ],
)
def test_serve_warns_when_the_outbox_or_a_default_address_reaches_the_network(
    capsys, settings, host, given, warnings
):
    """The outbox holds reset links: on a network address anyone could read them."""
    settings.OUTBOX_ENABLED = True
    cli._announce(host, 8000, base_url_given=given)
    out, err = capsys.readouterr()
    assert f"Relatch is running at {settings.BASE_URL}/" in out
    assert all(w in err for w in warnings)
    assert len(err.splitlines()) == len(warnings)


@pytest.mark.own_database
@pytest.mark.slow
def test_serve_restarts_a_dead_worker_and_web_server_and_keeps_serving(tmp_path, mail):
    """Issue 18 §1: killing the worker stopped the whole service in 6.8 s. Now the worker
    comes back (and delivers mail) while the web server never stops answering, and a killed
    gunicorn master is started again; only TERM stops ``relatch serve``."""
    email_url = f"smtp://127.0.0.1:{mail.port}"
    # An upload body a killed web process left behind (issue 18 §10): gone once serve starts.
    leftover = tmp_path / "data" / "tmp" / "uploads" / "tmpa1b2c3.upload.bytes"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"x" * 4096)
    with running_server(tmp_path, RELATCH_EMAIL_URL=email_url) as server, Poller(server) as web:
        assert not leftover.exists()
        def child(kind: str) -> int | None:
            found = [pid for pid, command in direct_children(server.process.pid).items()
                     if kind in command]
            return found[0] if found else None

        worker = child("db_worker")
        assert worker
        os.kill(worker, signal.SIGKILL)
        assert wait_for(lambda: child("db_worker") not in (None, worker), 20), server.output()
        assert "the worker was killed by SIGKILL after" in server.output()
        assert "restarting it in 1 s (restart 1)" in server.output()
        assert server.relatch("sendtestmail", "grace@example.org").returncode == 0
        assert wait_for(lambda: mail.to("grace@example.org"), 30), server.output()
        assert set(web.statuses()) == {200}, web.statuses()  # never stopped answering

        master = child("gunicorn")
        assert master
        killed_at = time.monotonic()
        os.kill(master, signal.SIGKILL)
        # Back within a minute on a loaded 2-core machine (a start takes ~5 s when idle).
        assert wait_for(lambda: web.answered_since(killed_at + 0.5), 60), server.output()
        assert child("gunicorn") not in (None, master)
        assert "the web server was killed by SIGKILL after" in server.output()
        assert server.process.poll() is None
    assert server.process.returncode == 0  # stopped by TERM, every child obeyed


def _serve(tmp_path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(RELATCH), "serve", *args], env=relatch_env(tmp_path / "data"),
        capture_output=True, text=True, timeout=60, check=False,
    )


@pytest.mark.own_database
@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "0"], "0 is not a port number"),
        (["--port", "70000"], "70000 is not a port number"),
        (["--port", "http"], "'http' is not a port number"),
        (["--host", "not a host!"], "is not an IP address or a host name"),
        (["--host=-bad-.example"], "is not an IP address or a host name"),
        (["--host", "a..example"], "is not an IP address or a host name"),
        (["--host", "192.0.2.1"], "cannot listen on 192.0.2.1"),
    ],
)
def test_serve_refuses_a_bad_address_plainly(tmp_path, args, message):
    done = _serve(tmp_path, *args)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "data").exists()  # refused before anything was made


@pytest.mark.own_database
@pytest.mark.slow
def test_serve_refuses_a_bad_web_worker_count(tmp_path):
    done = subprocess.run(
        [str(RELATCH), "serve", "--port", "1"],
        env=relatch_env(tmp_path / "data", RELATCH_WEB_WORKERS="two"),
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 2
    assert "RELATCH_WEB_WORKERS must be a number of processes, not 'two'" in done.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.own_database
@pytest.mark.slow
def test_serve_refuses_a_port_in_use(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _serve(tmp_path, "--port", str(port))
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in done.stderr


# ---------------------------------------------------------------------------------------------
# relatch createstaff


def createstaff(*args: str, stdin: str | io.StringIO = "") -> str:
    out = io.StringIO()
    stream = stdin if isinstance(stdin, io.StringIO) else io.StringIO(stdin)
    call_command("createstaff", *args, stdin=stream, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_createstaff_reads_the_password_from_stdin():
    out = createstaff("--username", "Dana", "--email", "dana@Example.ORG", "--name", "Dana W",
                      stdin=PASSWORD + "\n")
    user = User.objects.get(username="Dana")
    assert user.is_staff and user.is_active and not user.is_superuser
    assert user.name == "Dana W"
    assert user.check_password(PASSWORD)
    email = Email.objects.get(user=user)
    assert (email.address, email.primary, email.verified) == ("dana@example.org", True, True)
    assert email.verified_at is not None
    assert SecurityEvent.objects.filter(user=user, kind=EventKind.ACCOUNT_CREATED).count() == 1
    assert "Created staff account 'Dana'" in out and PASSWORD not in out


@pytest.mark.django_db
def test_createstaff_keeps_spaces_in_a_password():
    """NIST N30: no truncation; only the line break ends the password."""
    createstaff("--username", "dana", "--email", "dana@example.org",
                stdin=f"  {PASSWORD}  \r\n")
    assert User.objects.get(username="dana").check_password(f"  {PASSWORD}  ")


class FakeTerminal(io.StringIO):
    """Standard input that says it is a terminal (getpass is replaced: a real terminal cannot
    be attached to a test)."""

    def isatty(self) -> bool:
        return True


@pytest.mark.django_db
def test_createstaff_asks_twice_on_a_terminal(monkeypatch):
    answers = iter([PASSWORD, PASSWORD])
    prompts: list[str] = []
    monkeypatch.setattr("getpass.getpass", lambda prompt: prompts.append(prompt) or next(answers))
    createstaff("--username", "dana", "--email", "dana@example.org", stdin=FakeTerminal())
    assert prompts == ["Password: ", "Password (again): "]
    assert User.objects.get(username="dana").check_password(PASSWORD)


@pytest.mark.django_db
def test_createstaff_refuses_two_different_passwords_on_a_terminal(monkeypatch):
    answers = iter([PASSWORD, PASSWORD + "x"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))
    with pytest.raises(CommandError, match="differ"):
        createstaff("--username", "dana", "--email", "dana@example.org", stdin=FakeTerminal())
    assert not User.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short1", "too short"),
        ("password1", "too common"),
        ("Relatch2024!", "word attackers try first"),
        ("dana-whitfield", "too similar"),
        ("x" * 1025, "longer than 1024"),
        ("", "No password given"),
    ],
)
def test_createstaff_refuses_a_weak_password_with_the_reason(password, reason):
    """NIST N30: the blocklist and similarity checks apply, and the reason is shown."""
    with pytest.raises(CommandError, match=reason):
        createstaff("--username", "dana-whitfield", "--email", "dana@example.org",
                    "--name", "Dana Whitfield", stdin=password + "\n")
    assert not User.objects.exists() and not Email.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("username", "reason"),
    [
        ("ALICE", "is taken"),  # unique ignoring case
        ("admin", "reserved"),
        ("Support", "reserved"),
        ("-dana", "starting and ending with a letter or digit"),
        ("dana smith", "Use letters, digits"),
        ("d" * 51, "at most 50"),
        ("", "Enter a username"),
    ],
)
def test_createstaff_refuses_a_bad_or_taken_username(make_user, username, reason):
    make_user(username="alice")
    with pytest.raises(CommandError, match=reason):
        createstaff(f"--username={username}", "--email", "new@example.org", stdin=PASSWORD)
    assert list(User.objects.values_list("username", flat=True)) == ["alice"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("Alice@EXAMPLE.org", "already verified on another account"),
        ("not-an-address", "valid email address"),
        ("a@" + "b" * 250 + ".org", "at most"),
    ],
)
def test_createstaff_refuses_a_bad_or_verified_address(make_user, address, reason):
    make_user(username="alice", email="alice@example.org")
    with pytest.raises(CommandError, match=reason):
        createstaff("--username", "dana", "--email", address, stdin=PASSWORD)
    assert not User.objects.filter(username="dana").exists()


@pytest.mark.django_db
def test_createstaff_may_take_an_address_left_unverified_elsewhere(make_user):
    """A typo or a squatter with an unverified address cannot block the real owner."""
    make_user(username="squatter", email="dana@example.org", verified=False)
    createstaff("--username", "dana", "--email", "dana@example.org", stdin=PASSWORD)
    assert Email.objects.get(user__username="dana").verified


@pytest.mark.django_db
def test_createstaff_without_password_makes_an_account_set_up_by_reset():
    out = createstaff("--username", "dana", "--email", "dana@example.org", "--no-password")
    user = User.objects.get(username="dana")
    assert user.is_staff and not user.has_usable_password()
    assert "/account/reset/" in out


@pytest.mark.own_database
@pytest.mark.slow
def test_createstaff_script_reads_a_piped_password(tmp_path):
    """The real console script, as a provisioning script calls it."""
    env = relatch_env(tmp_path / "data")
    run = [str(RELATCH), "createstaff", "--username", "dana", "--email", "dana@example.org"]
    weak = subprocess.run(run, env=env, input="password\n", capture_output=True, text=True,
                          timeout=60, check=False)
    assert weak.returncode == 1 and "too common" in weak.stderr
    good = subprocess.run(run, env=env, input=PASSWORD + "\n", capture_output=True, text=True,
                          timeout=60, check=False)
    assert good.returncode == 0, good.stderr
    assert "Created staff account 'dana'" in good.stdout


# ---------------------------------------------------------------------------------------------
# relatch demo


@pytest.mark.own_database
@pytest.mark.slow
def test_demo_works_on_a_fresh_data_directory(tmp_path):
    """An operator's first command may be ``relatch demo``, before serve ever migrated."""
    env = relatch_env(tmp_path / "data")
    run = subprocess.run([str(RELATCH), "demo", "--password", PASSWORD], env=env,
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    assert "Created staff dana <dana@example.org>." in run.stdout


def demo(*args: str) -> str:
    out = io.StringIO()
    call_command("demo", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_demo_seeds_maintainers_and_a_staff_member_once():
    out = demo()
    users = {u.username: u for u in User.objects.all()}
    assert set(users) == {"alice", "bob", "carol", "dana"}
    assert [u for u in users if users[u].is_staff] == ["dana"]
    for user in users.values():
        assert user.name and " " in user.name  # a real-looking name
        email = Email.objects.get(user=user)
        assert email.address == f"{user.username}@example.org"
        assert email.verified and email.primary
    password = out.strip().splitlines()[-1].rsplit(": ", 1)[1]
    assert len(password) >= 16
    assert all(u.check_password(password) for u in users.values())
    assert out.count(password) == 1  # shown once

    again = demo()
    assert User.objects.count() == 4
    assert "Skipped alice: the username exists." in again
    assert password not in again and "Nothing new" in again
    assert User.objects.get(username="bob").check_password(password)


@pytest.mark.django_db
def test_demo_passwords_differ_between_runs():
    first = demo().strip().splitlines()[-1]
    User.objects.all().delete()
    second = demo().strip().splitlines()[-1]
    assert first != second


@pytest.mark.django_db
def test_demo_skips_a_taken_username_and_creates_the_rest(make_user):
    make_user(username="Bob", email="robert@example.org", password=PASSWORD)
    out = demo("--password", "a fine demo passphrase")
    assert "Skipped bob: the username exists." in out
    assert User.objects.get(username="Bob").check_password(PASSWORD)  # untouched
    assert User.objects.get(username="carol").check_password("a fine demo passphrase")
    assert "a fine demo passphrase" not in out


@pytest.mark.django_db
def test_demo_refuses_a_weak_password():
    with pytest.raises(CommandError, match="too common"):
        demo("--password", "password")
    assert not User.objects.exists()
