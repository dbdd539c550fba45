"""Relatch's package index pages against pypiserver and devpi-server, same corpus, one run.

    .venv/bin/python bench/index_pages.py [--servers relatch,pypiserver,pypiserver-gunicorn,devpi]
        [--duration 10] [--warmup 2] [--conns 2,16] [--repeat 1] [--json FILE]

Uses the peer harness (``--harness``, default ``$BENCH_PEER_HARNESS`` or
/work/shared/peer-bench): ``make_corpus.py`` makes the corpus (201 projects, 10,000 files, one
project of 2,000 files) unless ``--corpus`` already holds one, ``peers.sh install/start/stop`` runs
the peers, ``wrk_report.lua`` makes wrk print one JSON line. Relatch is loaded with
``relatch index_import_file`` into a data directory cached per corpus fingerprint and per version
of the code that shapes the stored rows (under $BENCH_STATE/cache), copied fresh for every start,
and served by ``relatch serve`` with RELATCH_WEB_WORKERS=2 (gunicorn, 2 gthread processes x 8
threads).

``gunicorn-floor`` in ``--servers`` serves the same corpus from memory with ``floor_app.py`` under
relatch serve's own gunicorn command: the server's ceiling, with no application work.

``relatch@REF`` in ``--servers`` (e.g. ``relatch,relatch@main``) also measures commit REF's
code (``git archive``, run from the same venv through PYTHONPATH) and prints the working tree's
ratios against it: a change's effect measured in one run, as this machine's speed moves.

Each server runs alone, on 127.0.0.1. For every measure: a warm-up, then ``wrk -t1 -cN -dD`` per
connection count; the server's CPU time (its process tree, from /proc) is read around each run.
Measures: ``root`` GET /simple/, ``small_html`` / ``small_json`` the index page of a 40-file
project (JSON with Accept: application/vnd.pypi.simple.v1+json, PEP 691), ``big_html`` the
2,000-file project, ``file`` one wheel of the 40-file project. Peers without PEP 691 are not
measured on ``small_json``.

Prints every figure, then for each measure the ratio Relatch / best peer (requests/s: higher is
better; p50/p99: lower is better) and issue 7's target: on /simple/<project>/ at 16 connections,
Relatch >= 2x the best peer's requests/s and p99 < 20 ms. Exit status 0 even when a target is
missed (the table says so); 2 when a server fails to start or answers with errors.

devpi's first load takes ~35 min on 2 cores (cached per corpus afterwards by peers.sh). Do not run
this with devpi in --servers while another ``peers.sh start devpi`` is loading: peers.sh stops the
recorded devpi pid before starting.
"""

# ruff: noqa: T201, S108, S310, S603, S607  (a script run by hand: prints, runs wrk and servers)
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JSON_ACCEPT = "application/vnd.pypi.simple.v1+json"
MEASURES = ["root", "small_html", "small_json", "big_html", "file"]
PEERS = ["pypiserver", "pypiserver-gunicorn", "devpi"]
RELATCH_PORT = 8090
CLK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(f"[index_pages {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- processes and HTTP -------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + sys) of pid and its descendants, from /proc."""
    kids: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                st = (d / "stat").read_text()
            except OSError:
                continue
            kids.setdefault(int(st[st.rindex(")") + 2 :].split()[1]), []).append(int(d.name))
    todo, total = [pid], 0.0
    while todo:
        p = todo.pop()
        try:
            st = Path(f"/proc/{p}/stat").read_text()
        except OSError:
            continue
        f = st[st.rindex(")") + 2 :].split()
        total += (int(f[11]) + int(f[12])) / CLK
        todo.extend(kids.get(p, []))
    return total


def fetch(url: str, accept: str | None = None) -> tuple[int, str, bytes]:
    req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read()


def wait_http(url: str, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            fetch(url)
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"timeout waiting for {url}")


def first_file(page_url: str) -> str:
    _, _, body = fetch(page_url, "text/html")
    for href in re.findall(rb'href="([^"]+)"', body):
        if re.search(rb"\.(whl|tar\.gz)(#|$)", href):
            return urllib.parse.urljoin(page_url, href.decode().split("#", 1)[0])
    raise RuntimeError(f"no distribution link on {page_url}")


def probe(url: str, accept: str | None) -> dict:
    status, ctype, body = fetch(url, accept)
    return {"status": status, "content_type": ctype.split(";")[0], "bytes": len(body)}


def wrk(url: str, conns: int, seconds: float, accept: str | None, lua: Path | None) -> dict:
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{int(seconds)}s", "--timeout", "30s"]
    if accept:
        cmd += ["-H", f"Accept: {accept}"]
    if lua:
        cmd += ["-s", str(lua)]
    out = subprocess.run(cmd + [url], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1]) if lua else {}


# --- servers ------------------------------------------------------------------------------------


class Peer:
    def __init__(self, name: str, harness: Path, corpus: Path, env: dict[str, str]) -> None:
        self.name, self.harness, self.corpus, self.env = name, harness, corpus, env

    def start(self) -> None:
        subprocess.run(
            ["bash", str(self.harness / "peers.sh"), "start", self.name, str(self.corpus)],
            check=True,
            env=self.env,
        )
        info = {}
        for line in (Path(self.env["BENCH_STATE"]) / f"{self.name}.env").read_text().splitlines():
            k, _, v = line.partition("=")
            info[k] = subprocess.run(  # values are written with printf %q
                ["bash", "-c", f"printf %s {v}"], capture_output=True, text=True
            ).stdout
        self.pid = int(info["PID"])
        self.simple = info["SIMPLE"]
        self.json_api = info["JSON_API"] == "1"
        self.config = info["CONFIG"]

    def stop(self) -> None:
        subprocess.run(["bash", str(self.harness / "peers.sh"), "stop", self.name], env=self.env)


class Attached:
    """A server already running (e.g. devpi while its first load is paused): measured, not
    started or stopped. ``--attach devpi=URL_OF_SIMPLE``; its pid comes from peers.sh's state."""

    json_api = True

    def __init__(self, name: str, simple: str, state: Path) -> None:
        self.name, self.simple, self.state = name, simple, state
        self.config = f"already running, attached at {simple} (not started by this run)"

    def start(self) -> None:
        self.pid = int((self.state / f"{self.name}.pid").read_text())
        wait_http(self.simple, 10)

    def stop(self) -> None:
        pass


class Relatch:
    name = "relatch"
    json_api = True

    def __init__(
        self, corpus: Path, state: Path, port: int, workers: int, ref: str | None = None
    ) -> None:
        self.corpus, self.state, self.port, self.workers = corpus, state, port, workers
        self.simple = f"http://127.0.0.1:{port}/simple/"
        self.config = (
            f"relatch serve --port {port}, RELATCH_WEB_WORKERS={workers} (gunicorn, {workers} "
            "gthread processes x 8 threads), SQLite, no Redis, access log on"
        )
        self.ref = ref
        self.src = ROOT / "src"
        if ref:
            # The same venv runs another commit's code: PYTHONPATH puts it before the
            # editable install, for the server, its workers and the import alike.
            self.name = f"relatch@{ref}"
            self.src = checkout(ref) / "src"
            self.config += f", the code of {ref} (git archive), the same venv"
        if module := os.environ.get("DJANGO_SETTINGS_MODULE"):
            # A trial of a settings change (see bench/README.md): the table must say so.
            self.config += f", DJANGO_SETTINGS_MODULE={module} (NOT the shipped settings)"
        self.proc: subprocess.Popen | None = None
        self.tmp: str | None = None

    def _code_version(self) -> str:
        """Digest of the code that shapes the stored data (models, migrations, the import
        command and what it calls), so a stale cache is not reused; the views are not in it."""
        h = hashlib.sha256()
        src = self.src / "relatch"
        shaping = [
            *src.rglob("migrations/*.py"),
            *src.rglob("models.py"),
            *(src / "index" / "upload").glob("*.py"),
            src / "index" / "names.py",
            *(src / "index" / "simple").glob("imports.py"),  # before issue 16: now in upload/
            *(src / "index" / "management").rglob("*.py"),
        ]
        for p in sorted(shaping):
            h.update(str(p.relative_to(src)).encode() + p.read_bytes())
        return h.hexdigest()[:16]

    def _env(self, data: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RELATCH_")}
        env.update(RELATCH_DATA_DIR=str(data), RELATCH_WEB_WORKERS=str(self.workers))
        if self.ref:
            env["PYTHONPATH"] = str(self.src)
        return env

    def _loaded(self) -> Path:
        fp = (self.corpus / "FINGERPRINT").read_text().strip()[:16]
        cache = self.state / "cache" / f"relatch-{fp}-{self._code_version()}"
        if (cache / "LOADED").exists():
            return cache
        shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir(parents=True)
        relatch = str(ROOT / ".venv" / "bin" / "relatch")
        env = self._env(cache)
        t0 = time.monotonic()
        subprocess.run([relatch, "migrate", "-v0"], check=True, env=env)
        # The account the files are published as (index_import_file needs one).
        subprocess.run(
            [relatch, "shell", "-c", "from relatch.accounts.provisioning import "
             "create_verified_user as c; c(username='bench', email='bench@example.org', "
             "password=None)"],
            check=True, env=env, stdout=subprocess.DEVNULL,
        )
        files = sorted(str(p) for p in (self.corpus / "packages").iterdir())
        log(f"relatch: importing {len(files)} files with index_import_file (cached afterwards)")
        for i in range(0, len(files), 1000):
            subprocess.run(
                [relatch, "index_import_file", "--owner", "bench", *files[i : i + 1000]],
                check=True,
                env=env,
                stdout=subprocess.DEVNULL,
            )
        (cache / "LOADED").write_text(f"{time.monotonic() - t0:.1f} s\n")
        log(f"relatch: loaded in {time.monotonic() - t0:.0f} s")
        return cache

    def start(self) -> None:
        cache = self._loaded()
        try:
            fetch(self.simple)
        except OSError:
            pass
        else:
            raise RuntimeError(
                f"something already answers on port {self.port}; stop it or use --port"
            )
        self.tmp = tempfile.mkdtemp(prefix="relatch-bench-")
        data = Path(self.tmp) / "data"
        shutil.copytree(cache, data)
        with (Path(self.tmp) / "serve.log").open("wb") as serve_log:
            self.proc = subprocess.Popen(
                [str(ROOT / ".venv" / "bin" / "relatch"), "serve", "--port", str(self.port)],
                env=self._env(data),
                stdout=serve_log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid = self.proc.pid
        wait_http(self.simple, 120)
        if self.proc.poll() is not None:
            raise RuntimeError(f"relatch serve exited; see {self.tmp}/serve.log")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)


class GunicornFloor:
    """``floor_app.py`` under the gunicorn command ``relatch serve`` runs (the same workers,
    threads and access logger): what the server alone costs here, with no application work."""

    name = "gunicorn-floor"
    json_api = True

    def __init__(self, corpus: Path, port: int, workers: int) -> None:
        self.corpus, self.port, self.workers = corpus, port, workers
        self.simple = f"http://127.0.0.1:{port}/simple/"
        self.config = (
            f"bench/floor_app.py (pages built in memory at start) under relatch serve's "
            f"gunicorn command, {workers} gthread processes x 8 threads, access log on"
        )
        self.proc: subprocess.Popen | None = None

    def _command(self) -> list[str]:
        # Built by relatch itself, so the floor keeps up with any change to the real command.
        os.environ["RELATCH_WEB_WORKERS"] = str(self.workers)
        from relatch.cli import _gunicorn_command

        command = _gunicorn_command("127.0.0.1", self.port)
        command[command.index("relatch.wsgi:application")] = "floor_app:application"
        return command + ["--chdir", str(ROOT / "bench")]

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RELATCH_")}
        env["BENCH_FLOOR_CORPUS"] = str(self.corpus)
        self.proc = subprocess.Popen(
            self._command(), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pid = self.proc.pid
        wait_http(self.simple, 60)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(20)


def checkout(ref: str) -> Path:
    """``src/`` of commit ``ref``, unpacked once per commit under the temporary directory."""
    sha = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", f"{ref}^{{commit}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    out = Path(tempfile.gettempdir()) / f"relatch-bench-src-{sha[:12]}"
    if not (out / "src" / "relatch").is_dir():
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", sha, "src"], capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)
    return out


# --- measuring ----------------------------------------------------------------------------------


def measure(
    server: Peer | Relatch | Attached | GunicornFloor,
    small: str,
    big: str,
    args: argparse.Namespace,
    lua: Path,
    rep: int,
) -> list[dict]:
    urls = {
        "root": (server.simple, None),
        "small_html": (f"{server.simple}{small}/", "text/html"),
        "small_json": (f"{server.simple}{small}/", JSON_ACCEPT),
        "big_html": (f"{server.simple}{big}/", "text/html"),
        "file": (first_file(f"{server.simple}{small}/"), None),
    }
    rows = []
    for ep in MEASURES:
        url, accept = urls[ep]
        if ep.endswith("_json") and not server.json_api:
            log(f"{server.name} {ep}: skipped (no PEP 691 JSON)")
            continue
        pr = probe(url, accept)
        if ep.endswith("_json") and "json" not in pr["content_type"]:
            raise RuntimeError(f"{server.name} {ep}: answered {pr['content_type']}, not JSON")
        # As many connections as the largest measure: with two, both may land on one worker,
        # and the other then meets its first requests (a cold build) inside the measure.
        wrk(url, max(args.conns), args.warmup, accept, None)
        for c in args.conns:
            load = float(Path("/proc/loadavg").read_text().split()[0])
            c0 = cpu_seconds(server.pid)
            r = wrk(url, c, args.duration, accept, lua)
            cpu = cpu_seconds(server.pid) - c0
            errors = sum(
                r[k]
                for k in (
                    "connect_errors",
                    "read_errors",
                    "write_errors",
                    "status_errors",
                    "timeouts",
                )
            )
            row = {
                "rep": rep,
                "server": server.name,
                "measure": ep,
                "conns": c,
                "url": url,
                "accept": accept,
                "bytes_per_response": pr["bytes"],
                "rps": r["requests"] / (r["duration_us"] / 1e6),
                "p50_ms": r["lat_p50_us"] / 1000,
                "p99_ms": r["lat_p99_us"] / 1000,
                "errors": errors,
                "requests": r["requests"],
                "server_cpu_ms_per_req": 1000 * cpu / max(r["requests"], 1),
                "loadavg_before": load,
            }
            rows.append(row)
            log(
                f"{server.name} {ep} c={c}: {row['rps']:.0f} r/s p50 {row['p50_ms']:.1f} ms "
                f"p99 {row['p99_ms']:.1f} ms, {row['server_cpu_ms_per_req']:.2f} CPU ms/req"
                + (f", {errors} ERRORS" if errors else "")
            )
    return rows


def median_rows(rows: list[dict]) -> dict[tuple[str, str, int], dict]:
    groups: dict[tuple[str, str, int], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["server"], r["measure"], r["conns"]), []).append(r)
    out = {}
    for key, rs in groups.items():
        m = dict(rs[0])
        for k in ("rps", "p50_ms", "p99_ms", "server_cpu_ms_per_req"):
            m[k] = statistics.median(x[k] for x in rs)
            m[k + "_range"] = (min(x[k] for x in rs), max(x[k] for x in rs))
        m["errors"] = sum(x["errors"] for x in rs)
        out[key] = m
    return out


def against_commits(med: dict, servers: list[str], conns: list[int]) -> list[str]:
    """The working tree against each ``relatch@REF`` measured in the same run."""
    lines = []
    for base in (s for s in servers if s.startswith("relatch@")):
        lines += ["", f"Relatch (working tree) / {base} (r/s: >1 better; p99, cpu: <1 better)"]
        for ep in MEASURES:
            for c in conns:
                new, old = med.get(("relatch", ep, c)), med.get((base, ep, c))
                if new and old:
                    lines.append(
                        f"  {ep:<11} c={c:<3} r/s {new['rps'] / old['rps']:5.2f}x  "
                        f"p99 {new['p99_ms'] / old['p99_ms']:5.2f}x  cpu "
                        f"{new['server_cpu_ms_per_req'] / old['server_cpu_ms_per_req']:5.2f}x"
                    )
    return lines


def against_floor(med: dict, servers: list[str], conns: list[int]) -> list[str]:
    """Relatch against gunicorn serving the same pages from memory with no application."""
    if "relatch" not in servers or GunicornFloor.name not in servers:
        return []
    lines = ["", "Relatch / gunicorn-floor (r/s: share of the server's own ceiling; p99, cpu)"]
    for ep in MEASURES:
        for c in conns:
            rel, floor = med.get(("relatch", ep, c)), med.get((GunicornFloor.name, ep, c))
            if rel and floor:
                lines.append(
                    f"  {ep:<11} c={c:<3} r/s {rel['rps'] / floor['rps']:5.2f}x  "
                    f"p99 {rel['p99_ms']:5.1f} / {floor['p99_ms']:5.1f} ms  cpu "
                    f"{rel['server_cpu_ms_per_req']:.2f} / {floor['server_cpu_ms_per_req']:.2f} ms"
                )
    return lines


def report(rows: list[dict], servers: list[str], conns: list[int], repeat: int) -> list[str]:
    med = median_rows(rows)
    lines = []
    note = f" (median of {repeat} interleaved runs)" if repeat > 1 else ""
    lines.append(f"requests/s, p50 and p99 latency (ms), server CPU ms per request{note}")
    head = f"{'measure':<11}{'conns':>6}  " + "".join(f"{s:>32}" for s in servers)
    lines += [head, " " * 19 + "".join(f"{'r/s    p50    p99  cpu':>32}" for _ in servers)]
    for ep in MEASURES:
        for c in conns:
            cells = []
            for s in servers:
                m = med.get((s, ep, c))
                cells.append(
                    f"{m['rps']:>9.0f} {m['p50_ms']:>6.1f} {m['p99_ms']:>6.1f} "
                    f"{m['server_cpu_ms_per_req']:>5.2f}" + ("!" if m["errors"] else " ")
                    if m
                    else f"{'n/a':>30}  "
                )
            lines.append(f"{ep:<11}{c:>6}  " + "".join(f"{x:>32}" for x in cells))
    lines.append("(! = the server answered some requests with errors or non-2xx statuses)")
    lines += against_commits(med, servers, conns)
    lines += against_floor(med, servers, conns)
    peers = [s for s in servers if not s.startswith("relatch") and s != GunicornFloor.name]
    if "relatch" in servers and peers:
        lines.append("")
        lines.append("Relatch / best peer (r/s: >1 is better; p50, p99: <1 is better)")
        for ep in MEASURES:
            for c in conns:
                rel = med.get(("relatch", ep, c))
                got = [med[(p, ep, c)] for p in peers if (p, ep, c) in med]
                if not rel or not got:
                    continue
                best_rps = max(got, key=lambda m: m["rps"])
                best_p50 = min(got, key=lambda m: m["p50_ms"])
                best_p99 = min(got, key=lambda m: m["p99_ms"])
                r_rps = rel["rps"] / best_rps["rps"]
                flag = "  <-- Relatch SLOWER" if r_rps < 1 else ""
                lines.append(
                    f"  {ep:<11} c={c:<3} r/s {r_rps:5.2f}x (vs {best_rps['server']})  "
                    f"p50 {rel['p50_ms'] / best_p50['p50_ms']:5.2f}x (vs {best_p50['server']})  "
                    f"p99 {rel['p99_ms'] / best_p99['p99_ms']:5.2f}x (vs {best_p99['server']})"
                    + flag
                )
        lines.append("")
        lines.append(
            "Issue 7 target, /simple/<project>/ at 16 connections: "
            ">= 2x the best peer's r/s and p99 < 20 ms"
        )
        for ep in ("small_html", "small_json"):
            rel = med.get(("relatch", ep, 16))
            got = [med[(p, ep, 16)] for p in peers if (p, ep, 16) in med]
            if rel and got:
                best = max(got, key=lambda m: m["rps"])
                ratio = rel["rps"] / best["rps"]
                ok = ratio >= 2 and rel["p99_ms"] < 20
                lines.append(
                    f"  {ep:<11} {ratio:5.2f}x {best['server']}, p99 {rel['p99_ms']:.1f} ms: "
                    + ("MET" if ok else "NOT MET")
                )
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--harness",
        type=Path,
        default=Path(os.environ.get("BENCH_PEER_HARNESS", "/work/shared/peer-bench")),
    )
    ap.add_argument(
        "--corpus", type=Path, default=Path(os.environ.get("BENCH_CORPUS", "/tmp/bench-corpus"))
    )
    ap.add_argument("--servers", default="relatch," + ",".join(PEERS))
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per measure")
    ap.add_argument("--conns", default="2,16")
    ap.add_argument("--repeat", type=int, default=1, help="interleaved repeats; medians reported")
    ap.add_argument("--port", type=int, default=RELATCH_PORT, help="Relatch's port")
    ap.add_argument("--workers", type=int, default=2, help="RELATCH_WEB_WORKERS")
    ap.add_argument(
        "--attach",
        action="append",
        default=[],
        metavar="NAME=SIMPLE_URL",
        help="measure this peer where it already runs instead of starting it",
    )
    ap.add_argument("--json", type=Path, help="write every row here (JSON lines)")
    args = ap.parse_args(argv)
    args.conns = [int(c) for c in args.conns.split(",")]
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    attached = dict(a.split("=", 1) for a in args.attach)
    for s in servers:
        if s not in ("relatch", GunicornFloor.name, *PEERS) and not s.startswith("relatch@"):
            ap.error(f"unknown server {s}")

    if not shutil.which("wrk"):
        ap.error("wrk is missing: apt-get install -y wrk")
    env = dict(os.environ)
    env.setdefault("BENCH_VENVS", "/tmp/bench-venvs")
    env.setdefault("BENCH_STATE", "/tmp/bench-state")
    state = Path(env["BENCH_STATE"])
    if (
        any(s in PEERS for s in servers)
        and not (Path(env["BENCH_VENVS"]) / "devpi/bin/python").exists()
    ):
        subprocess.run(["bash", str(args.harness / "peers.sh"), "install"], check=True, env=env)
    corpus = args.corpus.resolve()
    if not (corpus / "FINGERPRINT").exists():
        subprocess.run(
            [sys.executable, str(args.harness / "make_corpus.py"), "--out", str(corpus)], check=True
        )
    manifest = json.loads((corpus / "manifest.json").read_text())
    small, big = manifest["small_project"], manifest["big_project"]
    lua = args.harness / "wrk_report.lua"

    machine = (
        f"{os.cpu_count()} CPUs, "
        + next(
            (
                ln.split(":", 1)[1].strip()
                for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")
            ),
            "?",
        )
        + f", kernel {os.uname().release}; corpus {corpus} "
        f"({manifest['served_files']} files, {len(manifest['projects'])} projects; "
        f"small={small}, big={big}); wrk -t1, {args.duration:g} s per run after "
        f"{args.warmup:g} s warm-up"
    )
    rev = (
        subprocess.run(
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        or "?"
    )
    machine += f"; Relatch at {rev}"
    log(machine)
    rows: list[dict] = []
    configs: dict[str, str] = {}
    status = 0
    for rep in range(1, args.repeat + 1):
        for name in servers:
            server: Peer | Relatch | Attached | GunicornFloor
            if name == GunicornFloor.name:
                server = GunicornFloor(corpus, args.port, args.workers)
            elif name == "relatch" or name.startswith("relatch@"):
                ref = name.partition("@")[2] or None
                server = Relatch(corpus, state, args.port, args.workers, ref)
            elif name in attached:
                server = Attached(name, attached[name], state)
            else:
                server = Peer(name, args.harness, corpus, env)
            log(f"=== {name}: starting")
            try:
                server.start()
                configs[name] = server.config
                rows += measure(server, small, big, args, lua, rep)
            except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
                log(f"{name}: FAILED: {exc}")
                status = 2
            finally:
                server.stop()
                log(f"=== {name}: stopped")
    if args.json:
        with args.json.open("w") as fh:
            for r in rows:
                fh.write(json.dumps(r) + "\n")
    if any(r["errors"] for r in rows):
        status = 2
    print(machine)
    for name, cfg in configs.items():
        print(f"  {name}: {cfg}")
    print()
    print("\n".join(report(rows, [s for s in servers if s in configs], args.conns, args.repeat)))
    return status


if __name__ == "__main__":
    sys.exit(main())
