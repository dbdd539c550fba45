"""The ``relatch`` command: serve, worker, createstaff, createuser, demo, and Django's commands."""

import argparse
import os
import re
import signal
import socket
import sys
from collections.abc import Callable
from ipaddress import ip_address
from pathlib import Path

from relatch.supervision import Supervisor

# db_worker in a wrapper that waits out database outages (relatch.notify.worker).
WORKER_ARGS = ["resilient_db_worker", "--queue-name", "*", "--no-reload", "--interval", "1"]
# Seconds gunicorn lets requests in flight (a long upload) finish after TERM; a child still
# running STOP_MARGIN seconds after that is killed.
DEFAULT_GRACEFUL_TIMEOUT = 60
STOP_MARGIN = 10.0
READY_TIMEOUT = 60.0
_WILDCARD_HOSTS = {"0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104  (names, not a bind)
_HOSTNAME_RE = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)


class ServeError(Exception):
    """``relatch serve`` cannot start; the message says why."""


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "relatch.settings")
    import django

    django.setup()


def _web_workers() -> int:
    # Rate limits are shared by every process either way (Redis, or rows in the database), so
    # RELATCH_WEB_WORKERS may be anything. Without Redis the cache is per process, and one
    # process with eight threads is the embedded default's sweet spot on a small machine.
    if value := os.environ.get("RELATCH_WEB_WORKERS", "").strip():
        if not value.isdigit() or int(value) < 1:
            raise ServeError(f"RELATCH_WEB_WORKERS must be a number of processes, not {value!r}")
        return int(value)
    return (2 * (os.cpu_count() or 1) + 1) if os.environ.get("RELATCH_REDIS_URL") else 1


def _graceful_timeout() -> int:
    """RELATCH_GRACEFUL_TIMEOUT: seconds a stop waits for requests in flight (default 60)."""
    value = os.environ.get("RELATCH_GRACEFUL_TIMEOUT", "").strip()
    if not value:
        return DEFAULT_GRACEFUL_TIMEOUT
    if not value.isdigit() or int(value) < 1:
        raise ServeError(f"RELATCH_GRACEFUL_TIMEOUT must be a number of seconds, not {value!r}")
    return int(value)


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _gunicorn_command(host: str, port: int) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn", "relatch.wsgi:application",
        "--bind", _host_port(host, port),
        "--workers", str(_web_workers()), "--threads", "8",
        # gthread whose main loop reads each request whole, with header and body timeouts,
        # before a thread serves it: a slow client costs a socket, not a thread.
        "--worker-class", "relatch.web.worker.RequestBufferingWorker",
        "--access-logfile", "-", "--logger-class", "relatch.web.gunicorn_logging.RedactingLogger",
        "--graceful-timeout", str(_graceful_timeout()), "--timeout", "120", "--no-control-socket",
        # Its child_exit hook marks dead web processes in the metrics directory (relatch.ops).
        "--config", "python:relatch.ops.processes",
    ]


def port_number(text: str) -> int:
    """argparse type: a TCP port, 1 to 65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (1 to 65535)")
    return port


def host_name(text: str) -> str:
    """argparse type: an IP address (IPv6 with or without brackets) or a host name."""
    candidate = text.strip().removeprefix("[").removesuffix("]")
    try:
        return str(ip_address(candidate))
    except ValueError:
        pass
    if _HOSTNAME_RE.fullmatch(candidate):
        return candidate.lower()
    raise argparse.ArgumentTypeError(f"{text!r} is not an IP address or a host name")


def _check_can_listen(host: str, port: int) -> None:
    """Fail early, with a plain message, when the address cannot be bound (in use, no such
    interface, unknown name) instead of starting a worker beside a web server that died."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise ServeError(f"cannot resolve host {host!r}: {exc.strerror}") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn does
        try:
            probe.bind(address)
        except OSError as exc:
            raise ServeError(f"cannot listen on {_host_port(host, port)}: {exc.strerror}") from None


def _default_base_url(host: str, port: int) -> str:
    # A wildcard address is not a name a browser can use; loopback is, and is always allowed.
    # Loopback is named "localhost": browsers refuse an IP address as a security key's site.
    shown = _WILDCARD_HOSTS.get(host, host)
    if shown in {"127.0.0.1", "::1"}:
        shown = "localhost"
    return f"http://{_host_port(shown, port)}"


def _prepare(host: str, port: int) -> None:
    """Data directory, base URL and migrations, before any child starts."""
    data_dir = Path(os.environ.get("RELATCH_DATA_DIR") or Path.cwd() / "data").resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ["RELATCH_DATA_DIR"] = str(data_dir)
    # Before Django or any child starts: every process of this run counts into one directory,
    # which /metrics sums (relatch.ops).
    from relatch.ops.processes import prepare_metrics_dir

    prepare_metrics_dir(data_dir)
    os.environ.setdefault("RELATCH_BASE_URL", _default_base_url(host, port))
    _setup_django()
    from django.core.management import call_command
    from django.db import DatabaseError, connections

    try:
        call_command("migrate", interactive=False, verbosity=0)
    except DatabaseError as exc:
        raise ServeError(f"cannot prepare the database: {exc}") from None
    finally:
        connections.close_all()


def _answers_requests(host: str, port: int) -> Callable[[], bool]:
    """A probe that is true once a web worker answers HTTP: the listening socket accepts
    connections before any worker has loaded the application, and a connection queued in that
    gap is reset if a stop comes first, so "running" is announced only after an answer."""
    from urllib.parse import urlsplit

    from django.conf import settings

    target = _WILDCARD_HOSTS.get(host, host)
    request = f"GET / HTTP/1.0\r\nHost: {urlsplit(settings.BASE_URL).netloc}\r\n\r\n"

    def probe() -> bool:
        try:
            with socket.create_connection((target, port), timeout=2) as connection:
                connection.sendall(request.encode())
                return connection.recv(5) == b"HTTP/"
        except OSError:
            return False

    return probe


def _schedule_background_work() -> None:
    """Pick up the work a crash left behind (tasks a killed worker was running, mail whose
    delivery was never queued), then make sure the recovery desk's periodic pass (end of waits,
    reminders, branch re-checks) is queued; each pass queues the next, so one is enough and a
    restart keeps it."""
    from datetime import timedelta

    from relatch.notify.leftovers import resume_background_work
    from relatch.recovery.tasks import ensure_tick_scheduled

    resume_background_work()
    ensure_tick_scheduled(delay=timedelta(0))


def _remove_upload_leftovers() -> None:
    """Upload bodies that killed web processes left in the data directory's tmp/uploads: before
    the web server starts, every file there is one (``relatch worker`` does not do this, since
    a web server may be receiving uploads while it starts)."""
    from relatch.index.upload.temp_files import remove_upload_leftovers

    remove_upload_leftovers()


def _with_worker_id(argv: list[str]) -> list[str]:
    """db_worker under an id that names this process, so a later start can tell whether the
    worker that claimed a task is still alive (relatch.notify.leftovers)."""
    if argv[:1] not in (["db_worker"], WORKER_ARGS[:1]) or any(
        a.startswith("--worker-id") for a in argv
    ):
        return argv
    from relatch.notify.leftovers import worker_id

    return [*argv, "--worker-id", worker_id()]


def _bounce_listener() -> dict[str, list[str]]:
    """The third child, ``relatch bounce_listener``, when RELATCH_BOUNCE_LISTEN is set (its
    address checked first, as the web server's is)."""
    from django.conf import settings

    if settings.BOUNCE_LISTEN is None:
        return {}
    _check_can_listen(*settings.BOUNCE_LISTEN)
    return {"bounce listener": [sys.executable, "-m", "relatch.cli", "bounce_listener"]}


def serve(host: str, port: int) -> int:
    """Start Relatch: migrate, then gunicorn and the background worker (and the bounce
    listener, when RELATCH_BOUNCE_LISTEN is set), until TERM or Ctrl-C; a child that dies is
    restarted (relatch.supervision)."""
    commands = {
        "web server": _gunicorn_command(host, port),
        "worker": [sys.executable, "-m", "relatch.cli", *WORKER_ARGS],
    }
    _check_can_listen(host, port)
    base_url_given = bool(os.environ.get("RELATCH_BASE_URL"))
    _prepare(host, port)
    commands.update(_bounce_listener())
    _schedule_background_work()
    _remove_upload_leftovers()
    supervisor = Supervisor(stop_timeout=_graceful_timeout() + STOP_MARGIN)
    signal.signal(signal.SIGTERM, supervisor.request_stop)
    signal.signal(signal.SIGINT, supervisor.request_stop)
    supervisor.start(commands, essential="web server")
    supervisor.wait_until(_answers_requests(host, port), READY_TIMEOUT)
    if supervisor.running():
        _announce(host, port, base_url_given=base_url_given)
    return supervisor.supervise()


def _announce(host: str, port: int, *, base_url_given: bool) -> None:
    from django.conf import settings

    base_url = settings.BASE_URL
    print(f"Relatch is running at {base_url}/ (listening on {_host_port(host, port)})", flush=True)
    print(f"Data directory: {settings.DATA_DIR}", flush=True)
    if host in _WILDCARD_HOSTS and not base_url_given:
        # Pages answer only to the base URL's host name (no Host-header poisoning).
        print(f"Note: only {base_url}/ is accepted; set RELATCH_BASE_URL to the address other "
              "machines use.", file=sys.stderr, flush=True)
    if settings.OUTBOX_ENABLED:
        print(f"Outgoing mail: {base_url}/dev/outbox/ (no RELATCH_EMAIL_URL)", flush=True)
        if host not in {"127.0.0.1", "::1", "localhost"}:
            # The outbox holds reset links: anyone who can reach it can take over accounts.
            print("Warning: the outbox page is reachable from the network; set "
                  "RELATCH_EMAIL_URL before anyone else can reach this address.",
                  file=sys.stderr, flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="relatch", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    serve_parser = sub.add_parser("serve", help="start the web server and the worker")
    serve_parser.add_argument("--host", type=host_name, default="127.0.0.1",
                              help="address to listen on (default 127.0.0.1)")
    serve_parser.add_argument("--port", type=port_number, default=8000,
                              help="port to listen on (default 8000)")
    sub.add_parser("worker", help="run the background worker")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``relatch`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "serve":
        options = _parser().parse_args(argv)
        try:
            return serve(options.host, options.port)
        except ServeError as exc:
            print(f"relatch serve: error: {exc}", file=sys.stderr)
            return 2
    if argv and argv[0] in {"backup", "restore"}:
        # Before Django: a restore puts the signing key back before the settings read it.
        from relatch.backup import main as backup_main

        return backup_main(argv)
    if argv and argv[0] == "worker":
        argv = [*WORKER_ARGS, *argv[1:]]
        _setup_django()
        _schedule_background_work()
    if not argv or argv[0] in {"-h", "--help"}:
        _parser().print_help()
        print("\nAlso: backup DIR, restore DIR, createstaff, createuser, index_import_file, "
              "index_reserve_name, demo, and every Django management command (migrate, …).")
        return 0
    _setup_django()
    from django.core.management import execute_from_command_line

    execute_from_command_line(["relatch", *_with_worker_id(argv)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
