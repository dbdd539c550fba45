"""Downloads through nginx with RELATCH_ACCEL_REDIRECT against downloads through Relatch, one run.

    .venv/bin/python bench/accel_downloads.py [--large-mb 20] [--small-kb 64] [--conns 1,8]
        [--duration 10] [--repeat 2] [--workers N] [--json FILE]

Two set-ups, each the shipped ``deploy/nginx.conf`` (rendered as tests/deploy/test_nginx.py
renders it: TLS with a throw-away CA, loopback ports, temporary paths) in front of one
``relatch serve`` on a fresh copy of the same small data directory (SQLite, two wheels of
random bytes: LARGE and SMALL):

- ``accel``: RELATCH_ACCEL_REDIRECT=/internal-files/ — Relatch checks, nginx sends the file;
- ``relatch`` (the baseline): accel off — Relatch sends the bytes and nginx relays them.

For every file and connection count, the set-ups take turns (``--repeat`` rounds, so a change
in the machine's load hits both): ``--duration`` seconds of GETs on kept-alive TLS connections,
each answer's length checked (and the first one's SHA-256). Reported per set-up: requests/s,
MB/s, latency p50 and p99, and the CPU time of Relatch's process tree and of nginx's per
request (from /proc). Then the ratios accel / relatch. Exit status 1 if an answer was wrong.
``--json FILE`` writes one row per figure in bench/history.jsonl's format.
"""

# ruff: noqa: T201, S603, S607  (a script run by hand: prints, runs servers and git)
from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import io
import json
import os
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.deploy.nginx import Site, running_nginx  # noqa: E402 (after the path)
from tests.tls import TestCA  # noqa: E402

RELATCH = ROOT / ".venv" / "bin" / "relatch"
CLK = os.sysconf("SC_CLK_TCK")
SETUPS = ("accel", "relatch")


def log(msg: str) -> None:
    print(f"[accel {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and every process below it (from /proc)."""
    kids: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(entry.name))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLK
        except (OSError, IndexError, ValueError):
            pass
        todo += kids.get(current, [])
    return total


def _b64(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def wheel(directory: Path, name: str, size: int) -> Path:
    """A valid wheel whose one data file is ``size`` random (incompressible) bytes."""
    info = f"{name}-1.0.dist-info"
    files = {
        f"{name}/__init__.py": b"",
        f"{name}/blob.bin": os.urandom(size),
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = [f"{path},sha256={_b64(hashlib.sha256(data).digest())},{len(data)}"
              for path, data in files.items()]
    files[f"{info}/RECORD"] = ("\n".join([*record, f"{info}/RECORD,,"]) + "\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    path = directory / f"{name}-1.0-py3-none-any.whl"
    path.write_bytes(buffer.getvalue())
    return path


def env_for(data: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELATCH_")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.update(RELATCH_DATA_DIR=str(data), RELATCH_UPSTREAM="", **extra)
    return env


def prepare(base: Path, sizes: dict[str, int]) -> tuple[Path, dict[str, tuple[str, str, int]]]:
    """A data directory holding one wheel per entry of ``sizes``; each file's
    (/files/ path, SHA-256, size)."""
    data = base / "template"
    env = env_for(data)
    subprocess.run([RELATCH, "migrate", "-v0"], check=True, env=env)
    subprocess.run([RELATCH, "shell", "-c", "from relatch.accounts.provisioning import "
                    "create_verified_user as c; c(username='bench', "
                    "email='bench@example.org', password=None)"],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    files = {}
    for measure, size in sizes.items():
        path = wheel(base, f"accel_{measure}", size)
        subprocess.run([RELATCH, "index_import_file", "--owner", "bench", str(path)],
                       check=True, env=env, stdout=subprocess.DEVNULL)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        found = subprocess.run(
            [RELATCH, "shell", "-c", "from relatch.index.models import File; "
             f"print(File.objects.get(filename={path.name!r}).path)"],
            check=True, env=env, capture_output=True, text=True)
        files[measure] = ("/files/" + found.stdout.split()[-1], digest, path.stat().st_size)
    return data, files


@dataclass
class Deployment:
    name: str
    port: int
    relatch_pid: int
    nginx_pid: int
    context: ssl.SSLContext


@contextmanager
def deployment(name: str, template: Path, work: Path, ca: TestCA,
               workers: int | None) -> object:
    """nginx (the shipped config) in front of one relatch serve, accel on or off."""
    data = work / name / "data"
    shutil.copytree(template, data)
    https_port, relatch_port = free_port(), free_port()
    extra = {"RELATCH_BASE_URL": f"https://localhost:{https_port}", "RELATCH_PROXY_COUNT": "1"}
    if name == "accel":
        extra["RELATCH_ACCEL_REDIRECT"] = "/internal-files/"
    if workers:
        extra["RELATCH_WEB_WORKERS"] = str(workers)
    with (work / name / "serve.log").open("wb") as sink:
        proc = subprocess.Popen([RELATCH, "serve", "--port", str(relatch_port)],
                                env=env_for(data, **extra), stdout=sink,
                                stderr=subprocess.STDOUT, start_new_session=True)
    certificate, key = ca.issue("localhost", "127.0.0.1")
    site = Site(hosts=(f"127.0.0.1:{relatch_port}",), http_port=free_port(),
                https_port=https_port, certificate=certificate, key=key,
                files_dir=data / "files", access_log=work / name / "access.log")
    try:
        with running_nginx(work / name / "nginx", site) as nginx:
            result = Deployment(name, https_port, proc.pid, nginx.process.pid,
                                ca.client_context())
            deadline = time.monotonic() + 120
            while fetch_status(result, "/simple/") != 200:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not start; see {work / name}/serve.log")
                time.sleep(0.3)
            yield result
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def fetch_status(target: Deployment, path: str) -> int:
    try:
        conn = http.client.HTTPSConnection("localhost", target.port, context=target.context,
                                           timeout=5)
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        conn.close()
        return response.status
    except OSError:
        return 0


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    bytes: int = 0
    wrong: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def client(target: Deployment, path: str, expected: tuple[str, int], end: float,
           tally: Tally, check_digest: bool) -> None:
    """GET ``path`` over one kept-alive TLS connection until ``end``."""
    digest, size = expected
    conn = http.client.HTTPSConnection("localhost", target.port, context=target.context,
                                       timeout=60)
    seen: list[float] = []
    got = wrong = 0
    while time.monotonic() < end:
        start = time.monotonic()
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException):
            wrong += 1
            conn.close()
            conn = http.client.HTTPSConnection("localhost", target.port,
                                               context=target.context, timeout=60)
            continue
        seen.append(time.monotonic() - start)
        if response.status != 200 or len(body) != size or (
            check_digest and hashlib.sha256(body).hexdigest() != digest
        ):
            wrong += 1
        check_digest = False
        got += len(body)
    conn.close()
    with tally.lock:
        tally.latencies += seen
        tally.bytes += got
        tally.wrong += wrong


def measure(target: Deployment, path: str, expected: tuple[str, int], conns: int,
            duration: float) -> dict[str, float]:
    tally = Tally()
    relatch_before, nginx_before = cpu_seconds(target.relatch_pid), cpu_seconds(target.nginx_pid)
    end = time.monotonic() + duration
    threads = [threading.Thread(target=client, args=(target, path, expected, end, tally, i == 0))
               for i in range(conns)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    count = max(len(tally.latencies), 1)
    ordered = sorted(tally.latencies) or [0.0]
    return {
        "requests/s": len(tally.latencies) / elapsed,
        "MB/s": tally.bytes / elapsed / 1e6,
        "p50 ms": statistics.median(ordered) * 1000,
        "p99 ms": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000,
        "relatch CPU ms/request": (cpu_seconds(target.relatch_pid) - relatch_before) * 1000
        / count,
        "nginx CPU ms/request": (cpu_seconds(target.nginx_pid) - nginx_before) * 1000 / count,
        "wrong answers": tally.wrong,
    }


UNITS = {"requests/s": "requests/s", "MB/s": "MB/s", "p50 ms": "ms", "p99 ms": "ms",
         "relatch CPU ms/request": "ms", "nginx CPU ms/request": "ms", "wrong answers": "count"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--large-mb", type=float, default=20)
    ap.add_argument("--small-kb", type=float, default=64)
    ap.add_argument("--conns", default="1,8")
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--workers", type=int, default=None, help="RELATCH_WEB_WORKERS")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--notes", default="", help="conditions, written into the --json rows")
    args = ap.parse_args()
    sizes = {"large": int(args.large_mb * 1e6), "small": int(args.small_kb * 1e3)}
    base = Path(tempfile.mkdtemp(prefix="relatch-accel-"))
    results: dict[tuple[str, str, int], list[dict[str, float]]] = {}
    try:
        log("preparing the data directory")
        template, files = prepare(base, sizes)
        ca = TestCA(base / "ca")
        with ExitStack() as stack:
            targets = {name: stack.enter_context(deployment(name, template, base / "run", ca,
                                                            args.workers))
                       for name in SETUPS}
            for measure_name, (path, digest, size) in files.items():
                for conns in [int(c) for c in args.conns.split(",")]:
                    for round_ in range(args.repeat):
                        order = SETUPS if round_ % 2 == 0 else SETUPS[::-1]
                        for name in order:
                            log(f"{measure_name} x{conns} {name} (round {round_ + 1})")
                            figures = measure(targets[name], path, (digest, size), conns,
                                              args.duration)
                            results.setdefault((measure_name, name, conns), []).append(figures)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return report(results, sizes, args)


def _median(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(row[key] for row in rows)


def report(results: dict[tuple[str, str, int], list[dict[str, float]]],
           sizes: dict[str, int], args: argparse.Namespace) -> int:
    keys = list(next(iter(results.values()))[0])
    rows = []
    wrong = 0
    for (measure_name, name, conns), runs in results.items():
        print(f"{measure_name} ({sizes[measure_name]:,} bytes) x{conns} {name}: " + ", ".join(
            f"{key} {_median(runs, key):.2f}" for key in keys))
        wrong += int(sum(run["wrong answers"] for run in runs))
        rows += [{"server": name, "measure": measure_name, "connections": conns,
                  "metric": key, "value": round(_median(runs, key), 3), "unit": UNITS[key]}
                 for key in keys]
    print("\nratios accel / relatch (requests/s, MB/s: higher is better; the rest lower):")
    for (measure_name, name, conns), runs in results.items():
        if name != "accel":
            continue
        base = results[(measure_name, "relatch", conns)]
        ratios = []
        for key in keys[:-1]:
            ours, theirs = _median(runs, key), _median(base, key)
            ratios.append(f"{key} {ours / theirs:.2f}x" if theirs else f"{key} -")
        print(f"  {measure_name} x{conns}: " + ", ".join(ratios))
    if args.json:
        stamp = {"run": None, "date": time.strftime("%Y-%m-%d", time.gmtime()),
                 "time_utc": time.strftime("%H:%M", time.gmtime()),
                 "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                          capture_output=True, text=True).stdout.strip(),
                 "benchmark": "bench/accel_downloads.py", "target": "accel-downloads",
                 "command": "bench/accel_downloads.py " + " ".join(sys.argv[1:]),
                 "notes": args.notes}
        with args.json.open("w") as out:
            for row in rows:
                out.write(json.dumps({**stamp, **row}) + "\n")
    print(f"\n{wrong} wrong answers" if wrong else "\nevery answer was the exact file")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
