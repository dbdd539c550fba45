"""Real installers run against a deployment in a loop, each run timed, and one ``relatch serve``
host killed outright (tests/deploy/test_several_hosts.py).

Every install is a real ``pip install --no-cache-dir`` or ``uv pip install --no-cache`` through
nginx over TLS, into a throwaway target directory, in a clean client environment that trusts
the test CA only (``Deployment.client_env``). What is recorded is what a user notices: whether
the command exited 0 with the package in place, and when it started and ended.
"""

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path

from tests.deploy.test_nginx import Deployment
from tests.index.clients import UV
from tests.serving import Server, descendants, direct_children, is_running, wait_for

# A bound for one install, not a speed target: 2 cores shared with both hosts, PostgreSQL,
# nginx and the other installers.
INSTALL_TIMEOUT = 180


@dataclass(frozen=True)
class Install:
    """One installer run: which, of what, when (time.monotonic()), and how it ended."""

    kind: str  # "pip" or "uv"
    requirement: str
    started: float
    ended: float
    succeeded: bool
    said: str  # the end of its output, for the failure message

    def __str__(self) -> str:
        outcome = "ok" if self.succeeded else "FAILED"
        said = "" if self.succeeded else self.said
        when = f"[{self.started:.1f}..{self.ended:.1f}]"
        return f"{self.kind} {self.requirement} {outcome} {when}\n{said}"


@dataclass
class Installers:
    """pip and uv pointed at ``deployment``'s nginx, each run in a directory of its own."""

    deployment: Deployment
    work: Path
    _numbers: Iterator[int] = field(default_factory=count)

    def _command(self, kind: str, requirement: str, target: Path) -> list[str]:
        index = f"{self.deployment.url}/simple/"
        if kind == "pip":
            return [sys.executable, "-m", "pip", "install", "--no-cache-dir", "--no-compile",
                    "--cert", str(self.deployment.ca.ca_file), "--index-url", index,
                    "--target", str(target), requirement]
        return [str(UV), "pip", "install", "--no-config", "--no-cache", "--python",
                sys.executable, "--target", str(target), "--default-index", index, requirement]

    def install(self, kind: str, requirement: str, module: str) -> Install:
        """Run one install of ``requirement``; it succeeded when the installer exited 0 and
        ``module`` (the import name of what it asked for) is in the target."""
        number = next(self._numbers)
        target = self.work / f"{kind}-{number}"
        env = self.deployment.client_env(f"home-{kind}-{number}")
        started = time.monotonic()
        try:
            done = subprocess.run(self._command(kind, requirement, target), env=env,
                                  capture_output=True, text=True, timeout=INSTALL_TIMEOUT,
                                  check=False)
            said, exit_code = done.stdout + done.stderr, done.returncode
        except subprocess.TimeoutExpired as error:
            said, exit_code = f"timed out after {INSTALL_TIMEOUT} s: {error.output!r}", -1
        ended = time.monotonic()
        succeeded = exit_code == 0 and (target / module / "__init__.py").exists()
        # The work directory would grow by a few hundred installs otherwise.
        shutil.rmtree(target, ignore_errors=True)
        shutil.rmtree(self.work / f"home-{kind}-{number}", ignore_errors=True)
        return Install(kind, requirement, started, ended, succeeded, said[-3000:])


class Load:
    """Installer loops in threads until ``until`` (time.monotonic()); every run kept."""

    def __init__(self, installers: Installers, kinds: list[str], requirement: str,
                 module: str, until: float) -> None:
        self.installers, self.requirement, self.module = installers, requirement, module
        self.until = until
        self.runs: list[Install] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._loop, args=(kind,), daemon=True)
                         for kind in kinds]

    def _loop(self, kind: str) -> None:
        while time.monotonic() < self.until:
            self.record(self.installers.install(kind, self.requirement, self.module))

    def record(self, run: Install) -> None:
        with self._lock:
            self.runs.append(run)

    def __enter__(self) -> "Load":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for thread in self._threads:
            # Every run is bounded (INSTALL_TIMEOUT), so the loops end.
            thread.join(timeout=INSTALL_TIMEOUT + 60)


def kill_host(server: Server) -> None:
    """SIGKILL a ``relatch serve`` host and everything it runs, as a power cut would.

    The supervisor first, so it restarts nothing; then each child's process group at once
    (relatch.supervision starts gunicorn and the background worker each in a group of its own:
    gunicorn's master and workers die together, none can answer a last request); then anything
    that was left outside those groups.
    """
    groups = {child: os.getpgid(child) for child in direct_children(server.process.pid)}
    everything = descendants(server.process.pid)
    os.kill(server.process.pid, signal.SIGKILL)
    for group in groups.values():
        # Never the test's own group: only groups the supervisor made for its children.
        if group != os.getpgid(0):
            os.killpg(group, signal.SIGKILL)
    for pid in everything:
        if is_running(pid):
            os.kill(pid, signal.SIGKILL)
    server.process.wait(timeout=30)
    # Killed, not merely stopped: nothing of the host is left to answer.
    assert wait_for(lambda: not any(is_running(pid) for pid in everything), 30), everything


def first_time(condition: Callable[[], bool], timeout: float) -> float | None:
    """time.monotonic() when ``condition`` was first seen true (polled every 0.05 s), or None
    after ``timeout``: a time no earlier than the event itself."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return time.monotonic()
        time.sleep(0.05)
    return None
