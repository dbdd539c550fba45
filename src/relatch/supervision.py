"""The children of ``relatch serve`` kept alive: restarted with back-off, never given up on
lightly (issue 18 §1).

A dead child used to stop the whole service: the worker died on a database error and the web
server went down with it. Now a child that exits is started again after a delay that doubles
from ``Backoff.first`` to ``Backoff.most`` while it keeps dying soon after its start, and goes
back to the first step once it ran ``steady_after`` seconds. The web server (gunicorn's
master; it restarts its own workers) is essential: after ``essential_restarts`` quick deaths in
a row something is wrong that a restart does not mend (a broken configuration, a port taken),
and the supervisor stops everything and says so, so that systemd's ``Restart=`` takes over.
Every other child (the worker, the bounce listener) is restarted for ever.

The signal handlers only set a flag; the loop does the work, so a signal arriving at any
moment (even before the children exist) is never lost.
"""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from types import FrameType

TICK = 0.2  # seconds between two looks at the children


@dataclass(frozen=True)
class Backoff:
    """Delays before a restart: ``first`` doubling to ``most``; a child that ran
    ``steady_after`` seconds before dying is restarted after ``first`` again."""

    first: float = 1.0
    most: float = 60.0
    steady_after: float = 60.0

    def delay(self, failures: int) -> float:
        """Seconds to wait before the restart that follows the ``failures``-th quick death."""
        return min(self.first * 2 ** max(failures - 1, 0), self.most)


@dataclass
class Child:
    """One supervised process: its command and what the supervisor knows of its deaths."""

    name: str
    command: list[str]
    essential: bool = False
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restart_at: float = 0.0
    failures: int = 0  # deaths in a row, each before it ran steadily
    restarts: int = 0

    def start(self) -> None:
        # Own process group: Ctrl-C in the terminal reaches only ``relatch serve``, which
        # forwards one TERM, so the worker finishes its current task instead of dying in it;
        # and the group is how the leftovers of a dead child are found.
        self.process = subprocess.Popen(self.command, process_group=0)  # noqa: S603  (our own)
        self.started_at = time.monotonic()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def kill_leftovers(self) -> None:
        """SIGKILL what the dead child left in its process group: gunicorn's web workers
        outlive a killed master, keep its listening socket (a new master could not bind the
        port) and run without anyone to enforce their timeouts."""
        if self.process is not None:
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)


def describe_exit(status: int) -> str:
    """``exited with status 3`` or ``was killed by SIGKILL``."""
    if status < 0:
        with suppress(ValueError):
            return f"was killed by {signal.Signals(-status).name}"
    return f"exited with status {status}"


def say(text: str) -> None:
    print(f"relatch serve: {text}", file=sys.stderr, flush=True)  # noqa: T201  (the log)


@dataclass
class Supervisor:
    """Runs the children, restarts the dead ones, stops them all on TERM or INT."""

    backoff: Backoff = field(default_factory=Backoff)
    essential_restarts: int = 3
    stop_timeout: float = 20.0
    children: list[Child] = field(default_factory=list)
    stop_requested: bool = False
    gave_up: bool = False

    def request_stop(self, signum: int = signal.SIGTERM, frame: FrameType | None = None) -> None:
        self.stop_requested = True

    def start(self, commands: dict[str, list[str]], *, essential: str = "") -> None:
        """Start one child per command; ``essential`` names the one the service cannot run
        without (the web server)."""
        for name, command in commands.items():
            if self.stop_requested:
                return
            child = Child(name, command, essential=name == essential)
            child.start()
            self.children.append(child)

    def running(self) -> bool:
        return not (self.stop_requested or self.gave_up)

    def tend(self) -> None:
        """One look at every child: note the dead, start the ones whose delay is over."""
        now = time.monotonic()
        for child in self.children:
            process = child.process
            if process is not None:
                if (status := process.poll()) is not None:
                    self._died(child, status, now)
            elif now >= child.restart_at and self.running():
                child.start()
                say(f"restarted the {child.name} (pid {child.pid})")

    def _died(self, child: Child, status: int, now: float) -> None:
        ran = now - child.started_at
        child.failures = 1 if ran >= self.backoff.steady_after else child.failures + 1
        child.kill_leftovers()
        child.process = None
        if child.essential and child.failures > self.essential_restarts:
            say(f"the {child.name} {describe_exit(status)} after {ran:.0f} s, "
                f"{child.failures} times in a row within {self.backoff.steady_after:.0f} s of "
                "its start; giving up and stopping everything (its messages above say why)")
            self.gave_up = True
            return
        delay = self.backoff.delay(child.failures)
        child.restarts += 1
        child.restart_at = now + delay
        say(f"the {child.name} {describe_exit(status)} after {ran:.0f} s; restarting it in "
            f"{delay:g} s (restart {child.restarts})")

    def wait_until(self, ready: Callable[[], bool], timeout: float) -> None:
        """Tend the children until ``ready()`` (the web server answers), a stop, or timeout."""
        deadline = time.monotonic() + timeout
        while self.running() and time.monotonic() < deadline and not ready():
            self.tend()
            time.sleep(TICK)

    def supervise(self) -> int:
        """Tend the children until a stop request or giving up, then stop them all.

        Exit status 0 only for a requested stop that every running child obeyed; 1 when the
        supervisor gave up, so a process manager sees the failure and restarts the service.
        """
        while self.running():
            self.tend()
            time.sleep(TICK)
        return self.shutdown()

    def shutdown(self) -> int:
        """TERM every running child, wait ``stop_timeout`` for them all, SIGKILL the rest."""
        alive = [c.process for c in self.children if c.process and c.process.poll() is None]
        for process in alive:
            process.terminate()
        deadline = time.monotonic() + self.stop_timeout
        for process in alive:
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)  # the child and what it started
                process.wait()
        obeyed = all(p.returncode in (0, -signal.SIGTERM) for p in alive)
        return 0 if self.stop_requested and not self.gave_up and obeyed else 1
