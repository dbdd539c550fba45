"""A real ``relatch serve`` in a subprocess, for the CLI and end-to-end tests."""

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

RELATCH = Path(sys.executable).with_name("relatch")
URL_LINE = re.compile(r"Relatch is running at (\S+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def relatch_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a fresh operator shell: none of the test run's RELATCH_* settings
    (its base URL, key and database), a private data directory, and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELATCH_")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env["RELATCH_DATA_DIR"] = str(data_dir)
    # Never pypi.org from a test: no upstream index unless the test names one.
    env["RELATCH_UPSTREAM"] = ""
    env.update(extra)
    return env


def process_state(pid: int) -> str | None:
    """The kernel's state letter for ``pid`` (None: no such process)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def is_running(pid: int) -> bool:
    return process_state(pid) not in (None, "Z", "X")


def _children_by_parent() -> dict[int, list[int]]:
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry.name))
    return parents


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def direct_children(pid: int) -> dict[int, str]:
    """The processes ``pid`` started itself, with their command lines."""
    return {child: command_line(child) for child in _children_by_parent().get(pid, [])}


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (children, grandchildren …), read from /proc."""
    parents = _children_by_parent()
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def wait_for(condition, timeout: float, interval: float = 0.1):  # type: ignore[no-untyped-def]
    """Poll ``condition`` until it returns something truthy; return it (or the last value)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    data_dir: Path
    log: Path
    port: int
    env: dict[str, str]
    url: str = ""

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def children(self) -> set[int]:
        return descendants(self.process.pid)

    def get(self, path: str) -> tuple[int, bytes, dict[str, str]]:
        """GET ``path``; status, body and headers, whatever the status."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=60) as response:  # noqa: S310
                return response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as error:
            return error.code, error.read(), dict(error.headers)

    def relatch(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        """Run another ``relatch`` command against this server's data directory."""
        return subprocess.run(
            [str(RELATCH), *args], env=self.env, input=stdin, capture_output=True, text=True,
            timeout=60, check=False,
        )

    def create_account(self, username: str) -> None:
        """A verified account without a password, made as an operator would (a Django shell):
        the ``--owner`` of ``relatch index_import_file``."""
        code = ("from relatch.accounts.provisioning import create_verified_user as c; "
                f"c(username={username!r}, email={username + '@example.org'!r}, password=None)")
        done = self.relatch("shell", "-c", code)
        assert done.returncode == 0, done.stderr

    def stop(self, timeout: float = 20) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)


def stop_process(process: subprocess.Popen[bytes], *, timeout: float) -> None:
    """TERM, and KILL if it has not exited within ``timeout`` seconds; waited for."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def running_server(tmp_path: Path, *args: str, **env: str) -> Iterator[Server]:
    """``relatch serve`` on a free port with its data in ``tmp_path/data``; ready when yielded.

    On the way out every process it started is gone, even when the test failed half-way.
    """
    port = free_port()
    data_dir = tmp_path / "data"
    log = tmp_path / "serve.log"
    server_env = relatch_env(data_dir, **env)
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(RELATCH), "serve", "--port", str(port), *args],
            env=server_env, stdout=sink, stderr=subprocess.STDOUT,
        )
    server = Server(process, data_dir, log, port, server_env)
    seen: set[int] = set()
    try:
        # A bound, not a speed target: a loaded 2-core machine once took over a minute.
        match = wait_for(
            lambda: process.poll() is None and URL_LINE.search(server.output()), 240
        )
        assert match, f"relatch serve did not start:\n{server.output()}"
        server.url = match.group(1).rstrip("/")
        seen = server.children()
        yield server
    finally:
        seen |= server.children()
        stop_process(process, timeout=25)
        for pid in seen:
            if is_running(pid):
                os.kill(pid, signal.SIGKILL)


class Poller:
    """GET ``path`` every 0.1 s in a thread until stopped; every (time, status) seen."""

    def __init__(self, server: Server, path: str = "/") -> None:
        self.server, self.path = server, path
        self.seen: list[tuple[float, int | str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            try:
                status = self.server.get(self.path)[0]
            except OSError as error:  # refused, reset: the server did not answer
                status = type(error).__name__
            self.seen.append((time.monotonic(), status))

    def __enter__(self) -> "Poller":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def statuses(self) -> Counter[int | str]:
        return Counter(status for _, status in self.seen)

    def answered_since(self, since: float) -> bool:
        return any(at > since and status == 200 for at, status in self.seen)

    def failed_since(self, since: float) -> bool:
        return any(at > since and status != 200 for at, status in self.seen)
