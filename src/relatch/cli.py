"""The ``relatch`` command: serve, worker, createstaff, demo, and Django's commands."""

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

WORKER_ARGS = ["db_worker", "--queue-name", "*", "--no-reload", "--interval", "1"]


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "relatch.settings")
    import django

    django.setup()


def _web_workers() -> int:
    # Without Redis, rate-limit counters live in the process: one process (with threads) keeps
    # them whole. With Redis, several processes share them.
    if os.environ.get("RELATCH_WEB_WORKERS"):
        return int(os.environ["RELATCH_WEB_WORKERS"])
    return (2 * (os.cpu_count() or 1) + 1) if os.environ.get("RELATCH_REDIS_URL") else 1


def _gunicorn_command(host: str, port: int) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn", "relatch.wsgi:application",
        "--bind", f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "--workers", str(_web_workers()), "--threads", "8", "--worker-class", "gthread",
        "--access-logfile", "-", "--logger-class", "relatch.web.gunicorn_logging.RedactingLogger",
        "--graceful-timeout", "10", "--timeout", "120", "--no-control-socket",
    ]


def _prepare(host: str, port: int) -> None:
    """Data directory, base URL and migrations, before any child starts."""
    data_dir = Path(os.environ.get("RELATCH_DATA_DIR") or Path.cwd() / "data").resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ["RELATCH_DATA_DIR"] = str(data_dir)
    shown_host = f"[{host}]" if ":" in host else host
    os.environ.setdefault("RELATCH_BASE_URL", f"http://{shown_host}:{port}")
    _setup_django()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


class _Supervisor:
    """Runs the web server and the worker; stops both, cleanly, when either stops or on TERM."""

    def __init__(self, commands: list[list[str]]) -> None:
        self.children = [subprocess.Popen(cmd) for cmd in commands]
        self.stopping = False

    def stop(self, signum: int = signal.SIGTERM, frame: FrameType | None = None) -> None:
        self.stopping = True
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    def wait(self) -> int:
        while not self.stopping and all(c.poll() is None for c in self.children):
            time.sleep(0.2)
        self.stop()
        deadline = time.monotonic() + 20
        for child in self.children:
            try:
                child.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        return 0 if self.stopping and all(c.returncode in (0, -15) for c in self.children) else 1


def serve(host: str, port: int) -> int:
    """Start Relatch: migrate, then gunicorn and the background worker, until TERM or Ctrl-C."""
    _prepare(host, port)
    from django.conf import settings

    supervisor = _Supervisor(
        [_gunicorn_command(host, port), [sys.executable, "-m", "relatch.cli", *WORKER_ARGS]]
    )
    signal.signal(signal.SIGTERM, supervisor.stop)
    signal.signal(signal.SIGINT, supervisor.stop)
    print(f"Relatch is running at {settings.BASE_URL}/", flush=True)
    print(f"Data directory: {settings.DATA_DIR}", flush=True)
    if settings.OUTBOX_ENABLED:
        print(f"Outgoing mail: {settings.BASE_URL}/dev/outbox/ (no RELATCH_EMAIL_URL)", flush=True)
    return supervisor.wait()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="relatch", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    serve_parser = sub.add_parser("serve", help="start the web server and the worker")
    serve_parser.add_argument("--host", default="127.0.0.1")
    serve_parser.add_argument("--port", type=int, default=8000)
    sub.add_parser("worker", help="run the background worker")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``relatch`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "serve":
        options = _parser().parse_args(argv)
        return serve(options.host, options.port)
    if argv and argv[0] == "worker":
        argv = [*WORKER_ARGS, *argv[1:]]
    if not argv or argv[0] in {"-h", "--help"}:
        _parser().print_help()
        print("\nAlso: createstaff, demo, and every Django management command (migrate, …).")
        return 0
    _setup_django()
    from django.core.management import execute_from_command_line

    execute_from_command_line(["relatch", *argv])
    return 0


if __name__ == "__main__":
    sys.exit(main())
