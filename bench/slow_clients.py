"""Normal requests while dozens of clients are slow (issue 18 §3), for one or more servers.

    .venv/bin/python bench/slow_clients.py [--servers relatch,relatch@HEAD] [--header 64]
        [--body 64] [--idle 64] [--duration 40] [--probe-timeout 5] [--workers N]

Each server is ``relatch serve`` on a fresh copy of a small data directory (one project,
``slowbench``, with one wheel). ``relatch@REF`` runs commit REF's code from the same venv
(``git archive`` + PYTHONPATH, as ``index_pages.py`` does), so a change and the code before it
are measured in one run. ``--workers`` sets RELATCH_WEB_WORKERS (default: not set, so the
default set-up: one process without Redis).

For every server: 20 probes with no slow client (the baseline), then ``--duration`` seconds with
``--header`` clients sending a request header one byte a second (never finishing it),
``--body`` clients sending a whole header for a 100,000-byte POST and then its body one byte a
second, and ``--idle`` clients that connect and send nothing. Each slow client opens a new
connection as soon as the server closes its own, so the server always has that many. Meanwhile
one probe at a time, alternately ``GET /`` and ``GET /simple/slowbench/``, each on a new
connection, with ``--probe-timeout`` seconds to answer. Prints, per server: the probes answered
200 in time and their latency (p50, p95, max), and per kind of slow client how many connections
it opened and how many the server closed, with the median time a connection was kept. Exit
status 1 if a server answered fewer than 95 % of the probes in time.
"""

# ruff: noqa: T201, S603, S607  (a script run by hand: prints, runs servers)
from __future__ import annotations

import argparse
import asyncio
import http.client
import io
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RELATCH = ROOT / ".venv" / "bin" / "relatch"
PROJECT = "slowbench"
BODY_SIZE = 100_000


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def checkout(ref: str) -> Path:
    sys.path.insert(0, str(ROOT / "bench"))
    from index_pages import checkout as index_checkout

    return index_checkout(ref) / "src"


def wheel(directory: Path) -> Path:
    """A tiny valid wheel of ``slowbench`` 1.0."""
    info = "slowbench-1.0.dist-info"
    files = {
        "slowbench/__init__.py": b"VALUE = 1\n",
        f"{info}/METADATA": b"Metadata-Version: 2.1\nName: slowbench\nVersion: 1.0\n"
        b"Summary: slow clients benchmark\n",
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
        f"{info}/RECORD": b"",
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    path = directory / "slowbench-1.0-py3-none-any.whl"
    path.write_bytes(buffer.getvalue())
    return path


def env_for(data: Path, src: Path | None, workers: int | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELATCH_")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env["RELATCH_DATA_DIR"] = str(data)
    if workers:
        env["RELATCH_WEB_WORKERS"] = str(workers)
    if src:
        env["PYTHONPATH"] = str(src)
    return env


def prepare(base: Path) -> Path:
    data = base / "template"
    env = env_for(data, None, None)
    subprocess.run([RELATCH, "migrate", "-v0"], check=True, env=env)
    subprocess.run(
        [RELATCH, "shell", "-c", "from relatch.accounts.provisioning import "
         "create_verified_user as c; c(username='bench', email='bench@example.org', "
         "password=None)"],
        check=True, env=env, stdout=subprocess.DEVNULL,
    )
    subprocess.run([RELATCH, "index_import_file", "--owner", "bench", str(wheel(base))],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    return data


@dataclass
class Kind:
    name: str
    opened: int = 0
    closed: int = 0
    kept: list[float] = field(default_factory=list)


async def slow_client(kind: Kind, port: int, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.5)
            continue
        kind.opened += 1
        opened = loop.time()
        host = f"Host: localhost:{port}\r\n".encode()
        if kind.name == "header":
            writer.write(b"GET /simple/ HTTP/1.1\r\n" + host)
            payload = b"X-Slow: " + b"a" * 100_000
        elif kind.name == "body":
            writer.write(b"POST /legacy/ HTTP/1.1\r\n" + host
                         + f"Content-Length: {BODY_SIZE}\r\n".encode()
                         + b"Content-Type: application/octet-stream\r\n\r\n")
            payload = b"x" * BODY_SIZE
        else:
            payload = b""
        sent = 0
        closed = False
        try:
            while not stop.is_set():
                try:
                    data = await asyncio.wait_for(reader.read(65536), timeout=1.0)
                except TimeoutError:
                    if sent < len(payload):
                        writer.write(payload[sent:sent + 1])
                        sent += 1
                        await writer.drain()
                    continue
                if not data:
                    closed = True
                    break
        except (ConnectionError, OSError):
            closed = True
        if closed:
            kind.closed += 1
            kind.kept.append(loop.time() - opened)
        writer.close()


def run_attack(kinds: list[tuple[Kind, int]], port: int, ready: threading.Event,
               stop_flag: threading.Event) -> None:
    async def main() -> None:
        stop = asyncio.Event()
        tasks = []
        for kind, count in kinds:
            for _ in range(count):
                tasks.append(asyncio.create_task(slow_client(kind, port, stop)))
                await asyncio.sleep(0.002)
        ready.set()
        while not stop_flag.is_set():
            await asyncio.sleep(0.2)
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())


def probe(port: int, path: str, timeout: float) -> float | None:
    """Seconds until a 200 for ``path`` on a new connection, or None."""
    start = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": f"localhost:{port}"})
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            return None
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()
    elapsed = time.monotonic() - start
    return elapsed if elapsed <= timeout else None


def summary(latencies: list[float | None]) -> str:
    done = sorted(x for x in latencies if x is not None)
    if not done:
        return f"0 of {len(latencies)} answered"
    p95 = done[min(len(done) - 1, int(0.95 * len(done)))]
    return (f"{len(done)} of {len(latencies)} answered 200 in time; p50 "
            f"{statistics.median(done) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, "
            f"max {done[-1] * 1000:.1f} ms")


def measure(name: str, template: Path, args: argparse.Namespace) -> dict:
    src = checkout(name.split("@", 1)[1]) if "@" in name else None
    tmp = Path(tempfile.mkdtemp(prefix="relatch-slow-"))
    data = tmp / "data"
    shutil.copytree(template, data)
    port = free_port()
    env = env_for(data, src, args.workers)
    with (tmp / "serve.log").open("wb") as sink:
        proc = subprocess.Popen([RELATCH, "serve", "--port", str(port)], env=env, stdout=sink,
                                stderr=subprocess.STDOUT, start_new_session=True)
    result: dict = {"server": name}
    try:
        deadline = time.monotonic() + 60
        while probe(port, "/simple/", 2) is None:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start; see {tmp}/serve.log")
            time.sleep(0.2)
        paths = ["/", f"/simple/{PROJECT}/"]
        baseline = [probe(port, paths[i % 2], args.probe_timeout) for i in range(20)]
        result["baseline"] = summary(baseline)
        kinds = [(Kind("header"), args.header), (Kind("body"), args.body),
                 (Kind("idle"), args.idle)]
        ready, stop = threading.Event(), threading.Event()
        attack = threading.Thread(target=run_attack, args=(kinds, port, ready, stop))
        attack.start()
        ready.wait()
        time.sleep(2)  # every slow client has connected and sent its first bytes
        under: list[float | None] = []
        end = time.monotonic() + args.duration
        i = 0
        while time.monotonic() < end:
            under.append(probe(port, paths[i % 2], args.probe_timeout))
            i += 1
            time.sleep(0.1)
        stop.set()
        attack.join()
        result["under"] = summary(under)
        result["ok_share"] = sum(x is not None for x in under) / max(len(under), 1)
        result["kinds"] = [
            f"{k.name}: {count} at a time, {k.opened} connections opened, {k.closed} closed by "
            "the server" + (f" after {statistics.median(k.kept):.1f} s (median)" if k.kept
                            else "")
            for k, count in kinds if count
        ]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--servers", default="relatch,relatch@HEAD")
    ap.add_argument("--header", type=int, default=64, help="clients dribbling a header")
    ap.add_argument("--body", type=int, default=64, help="clients dribbling a body")
    ap.add_argument("--idle", type=int, default=64, help="clients sending nothing")
    ap.add_argument("--duration", type=float, default=40, help="seconds of probes under attack")
    ap.add_argument("--probe-timeout", type=float, default=5)
    ap.add_argument("--workers", type=int, default=None, help="RELATCH_WEB_WORKERS")
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="relatch-slow-template-"))
    failed = False
    try:
        template = prepare(base)
        for name in args.servers.split(","):
            log(f"{name}: {args.header} header, {args.body} body, {args.idle} idle slow clients "
                f"for {args.duration:.0f} s")
            r = measure(name, template, args)
            print(f"{name}")
            print(f"  no slow client: {r['baseline']}")
            print(f"  with slow clients: {r['under']}")
            for line in r["kinds"]:
                print(f"    {line}")
            failed |= r["ok_share"] < 0.95
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
