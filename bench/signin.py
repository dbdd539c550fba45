"""Password + authenticator-app sign-ins per second against the Argon2 bound (issue 7 §1).

A sign-in from a known device costs one Argon2id verification of the password, and that
verification dominates: this script measures how close a real server comes to the number of
verifications per second the same cores can do at all.

1. Starts a real ``relatch serve`` (gunicorn gthread, ``--workers`` processes, default one per
   core) in a throw-away data directory, on SQLite there or on a PostgreSQL database of its
   own (``--database-url``; the database is created and dropped by the script).
2. Makes ``--accounts`` accounts directly through Django (``relatch shell``): the production
   hasher (settings.PASSWORD_HASHERS: Django's Argon2PasswordHasher, Argon2id time_cost=2,
   memory_cost=102400 KiB, parallelism=8), a verified address, an authenticator app with a
   known secret, and one known device each (a KnownDevice row and its signed cookie, so the
   new-device mail check does not apply: a sign-in from a new device would wait for a mailed
   link, which is not what this measures). The password hash is computed once and shared,
   which changes nothing in the cost of verifying it.
3. The baseline: ``--workers`` processes verify the same Argon2 hash in a loop for half of
   ``--duration`` (argon2-cffi, the library Django's hasher calls; it computes the lanes in
   one thread and releases the GIL), each with ``--clients / --workers`` threads: as many
   verifications at once as the clients can cause, so that on a machine shared with other
   work the scheduler gives both sides the same share. It runs before and after the load,
   against the idle server; the mean is the bound.
4. The load: ``--clients`` threads, each its own browser and its own X-Forwarded-For address
   (the server runs with RELATCH_PROXY_COUNT=1, so the per-IP limits see many clients as a
   busy service would), run the real flow: GET /account/login/ for the CSRF token, POST the
   username and password, POST the TOTP code computed with pyotp; a sign-in counts when the
   last answer redirects to the account page. An account is used at most once per 30-second
   step (a TOTP code is accepted once).

    .venv/bin/python bench/signin.py [--duration 30] [--clients 8] [--workers N]
        [--accounts 400] [--database-url postgresql://postgres@127.0.0.1:5432/relatch_signin]
        [--without-argon2]

Prints both rates and their ratio; exits 1 when below 85 % of the bound or on any error.
``--without-argon2`` runs the same load against a server whose hasher is Django's MD5 (a
bench-only settings module) and prints the server's CPU per sign-in: everything but the hash.
"""
# ruff: noqa: T201, S603, S311  (a script run by hand: prints results, runs relatch, random IPs)

import argparse
import http.client
import json
import multiprocessing
import os
import queue
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pyotp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.serving import RELATCH, Server, command_line, descendants, running_server  # noqa: E402

TARGET = 0.85
PASSWORD = "correct horse battery staple bench"  # noqa: S105 (a bench account's password)
STEP = 30
_CSRF_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')

SETUP = """
import json, os, secrets
import pyotp
from django.contrib.auth.hashers import make_password
from django.http import HttpResponse
from django.utils import timezone
from relatch.accounts import devices
from relatch.accounts.models import Email, KnownDevice, User
from relatch.mfa.models import TotpDevice
from relatch.mfa.totp.primitive import seal

count = int(os.environ["BENCH_ACCOUNTS"])
encoded = make_password(os.environ["BENCH_PASSWORD"])  # the production hasher, hashed once
now = timezone.now()
users = User.objects.bulk_create(
    User(username=f"bench{i:05d}", password=encoded) for i in range(count))
Email.objects.bulk_create(
    Email(user=u, address=f"{u.username}@example.org", primary=True, verified=True,
          verified_at=now) for u in users)
secrets_ = {u.pk: pyotp.random_base32() for u in users}
TotpDevice.objects.bulk_create(
    TotpDevice(user=u, encrypted_secret=seal(secrets_[u.pk], bound_to=f"totp:user:{u.pk}"))
    for u in users)
ids = {u.pk: secrets.token_urlsafe(32) for u in users}


def signed(device_id):
    response = HttpResponse()
    devices._set_cookie(response, device_id)  # the value a browser gets at its first sign-in
    return response.cookies[devices.cookie_name()].value


KnownDevice.objects.bulk_create(
    KnownDevice(user=u, device_digest=devices.device_digest(ids[u.pk]), confirmed=True)
    for u in users)
print("ACCOUNTS " + json.dumps({"cookie": devices.cookie_name(), "accounts": [
    [u.username, secrets_[u.pk], signed(ids[u.pk])] for u in users]}))
print("HASH " + encoded)
"""


# --- the Argon2 bound --------------------------------------------------------------------------


def _verify_loop(encoded: str, password: str, seconds: float, threads: int,
                 out: "multiprocessing.Queue[int]") -> None:
    import argon2

    hasher = argon2.PasswordHasher()  # parameters come from the encoded hash
    # Django stores "argon2" + argon2-cffi's own encoding: verify exactly what it verifies.
    argon_hash = encoded.removeprefix("argon2")
    deadline = time.monotonic() + seconds
    counts = [0] * threads

    def loop(index: int) -> None:
        while time.monotonic() < deadline:
            hasher.verify(argon_hash, password)  # releases the GIL: threads run in parallel
            counts[index] += 1

    runners = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join()
    out.put(sum(counts))


def argon2_rate(encoded: str, processes: int, threads: int, seconds: float) -> tuple[float, float]:
    """Verifications per second of ``encoded`` by ``processes`` processes of ``threads``
    threads each (the concurrency the server's workers see from the clients), and the CPU
    seconds one verification took."""
    cpu_before = _children_cpu()
    results: multiprocessing.Queue[int] = multiprocessing.Queue()
    started = time.monotonic()
    workers = [
        multiprocessing.Process(
            target=_verify_loop, args=(encoded, PASSWORD, seconds, threads, results))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    total = sum(results.get() for _ in workers)
    for worker in workers:
        worker.join()
    return total / (time.monotonic() - started), (_children_cpu() - cpu_before) / max(total, 1)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def tree_cpu(pid: int) -> dict[str, float]:
    """CPU seconds used so far by ``pid`` and every process below it (from /proc), by role:
    the web server (gunicorn), the task worker (db_worker) and the rest."""
    totals = {"web": 0.0, "tasks": 0.0, "other": 0.0}
    for process in {pid, *descendants(pid)}:
        try:
            fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        command = command_line(process)
        role = "tasks" if "db_worker" in command else "web" if "gunicorn" in command else "other"
        totals[role] += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return totals


# --- the HTTP clients ------------------------------------------------------------------------


@dataclass
class Account:
    username: str
    secret: str
    device_cookie: str
    next_step: int = 0  # the first 30-second step in which its code is not yet spent


@dataclass
class Tally:
    signins: int = 0
    finished: int = 0  # with the sign-ins still running at the end (they used CPU too)
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Browser:
    """One client: its own connection, cookie jar and X-Forwarded-For address."""

    def __init__(self, url: str, ip: str, cookie_name: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.ip, self.device_cookie_name = ip, cookie_name
        self.connection = http.client.HTTPConnection(self.host, self.port, timeout=120)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
        headers = {"X-Forwarded-For": self.ip, "User-Agent": "relatch-bench/1",
                   "Host": f"localhost:{self.port}"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Origin"] = f"http://localhost:{self.port}"
        try:
            self.connection.request(method, path, body=body, headers=headers)
            response = self.connection.getresponse()
        except (http.client.HTTPException, OSError):
            self.connection.close()  # a dropped keep-alive: once more on a new connection
            self.connection.request(method, path, body=body, headers=headers)
            response = self.connection.getresponse()
        content = response.read()
        for value in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(value).items():
                self.cookies[name] = morsel.value
        return response.status, response.getheader("Location", ""), content

    def sign_in(self, account: Account, step: int) -> str | None:
        """One full sign-in; None when it reached the account page, else what went wrong."""
        self.cookies = {self.device_cookie_name: account.device_cookie}  # a known browser
        status, _, page = self.request("GET", "/account/login/")
        match = _CSRF_RE.search(page.decode())
        if status != 200 or not match:
            return f"login form: {status}"
        csrf = match.group(1)
        status, location, _ = self.request("POST", "/account/login/", {
            "csrfmiddlewaretoken": csrf, "identifier": account.username, "password": PASSWORD})
        if status != 302 or "second-step" not in location:
            return f"password: {status} {location}"
        code = pyotp.TOTP(account.secret).at(step * STEP)
        status, location, _ = self.request("POST", "/account/login/second-step/app/", {
            "csrfmiddlewaretoken": csrf, "code": code})
        if status != 302 or not location.rstrip("/").endswith("/account"):
            return f"app code: {status} {location}"
        return None


def client_loop(browser: Browser, accounts: "queue.Queue[Account]", stop: float,
                tally: Tally) -> None:
    while time.monotonic() < stop:
        account = accounts.get()
        step = int(time.time()) // STEP
        if step < account.next_step:  # its code of this step is spent: back in the queue
            accounts.put(account)
            time.sleep(0.05)
            continue
        started = time.monotonic()
        error = browser.sign_in(account, step)
        finished = time.monotonic()
        account.next_step = step + 1
        accounts.put(account)
        with tally.lock:
            tally.finished += error is None
            if error:
                tally.errors.append(error)
            elif finished <= stop:  # a sign-in finishing after the end is not counted
                tally.signins += 1
                tally.latencies.append(finished - started)


def signin_rate(server: Server, accounts: list[Account], cookie_name: str, clients: int,
                seconds: float) -> tuple[float, Tally]:
    pool: queue.Queue[Account] = queue.Queue()
    for account in accounts:
        pool.put(account)
    tally = Tally()
    # A short warm-up: imports, connections and caches of every worker, not measured.
    warm = Browser(server.url, "198.51.100.250", cookie_name)
    for _ in range(2):
        account = pool.get()
        warm.sign_in(account, int(time.time()) // STEP)
        account.next_step = int(time.time()) // STEP + 1
        pool.put(account)
    started = time.monotonic()
    stop = started + seconds
    threads = [
        threading.Thread(target=client_loop, args=(
            Browser(server.url, f"203.0.113.{i + 1}", cookie_name), pool, stop, tally))
        for i in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return tally.signins / seconds, tally


# --- setup and report ------------------------------------------------------------------------


def postgres_database(url: str, *, create: bool) -> None:
    """Create (or drop) the database named in ``url`` through the server's ``postgres`` DB."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if name in {"test", "test_test", "postgres", ""}:
        raise SystemExit(f"refusing to use the database {name!r}: give the bench its own")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            connection.execute(f'CREATE DATABASE "{name}"')


def make_accounts(server: Server, count: int) -> tuple[list[Account], str, str]:
    """The accounts, the device cookie's name, and the (shared) encoded password hash."""
    env = {**server.env, "BENCH_ACCOUNTS": str(count), "BENCH_PASSWORD": PASSWORD}
    done = subprocess.run([str(RELATCH), "shell", "-c", SETUP], env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    lines = {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in done.stdout.splitlines()
             if line.startswith(("ACCOUNTS ", "HASH "))}
    if "ACCOUNTS" not in lines:
        raise SystemExit(f"account setup failed:\n{done.stdout}\n{done.stderr}")
    data = json.loads(lines["ACCOUNTS"])
    accounts = [Account(u, s, c) for u, s, c in data["accounts"]]
    return accounts, data["cookie"], lines["HASH"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--accounts", type=int, default=400)
    parser.add_argument("--database-url", default="",
                        help="a PostgreSQL database of the bench's own (created and dropped)")
    parser.add_argument("--redis-url", default="", help="share rate-limit counters (optional)")
    parser.add_argument("--without-argon2", action="store_true",
                        help="measure everything but the hash: MD5 in place of Argon2, no bound")
    options = parser.parse_args()
    env = {"RELATCH_PROXY_COUNT": "1", "RELATCH_WEB_WORKERS": str(options.workers),
           "RELATCH_SECRET_KEY": "bench-" + os.urandom(16).hex()}
    if options.without_argon2:
        options.accounts = max(options.accounts, 3000)  # ~60 sign-ins/s, one per account-step
    if options.database_url:
        postgres_database(options.database_url, create=True)
        env["RELATCH_DATABASE_URL"] = options.database_url
    if options.redis_url:
        env["RELATCH_REDIS_URL"] = options.redis_url
    try:
        with tempfile.TemporaryDirectory(prefix="relatch-bench-") as tmp:
            if options.without_argon2:
                env.update(cheap_hasher_settings(Path(tmp) / "settings"))
            with running_server(Path(tmp), **env) as server:
                return run(server, options)
    finally:
        if options.database_url:
            postgres_database(options.database_url, create=False)


def cheap_hasher_settings(folder: Path) -> dict[str, str]:
    """Environment for a server whose password hasher is Django's MD5 (a bench-only settings
    module written into ``folder``): what a sign-in costs besides Argon2."""
    folder.mkdir(parents=True)
    (folder / "relatch_bench_md5.py").write_text(
        "from relatch.settings import *  # noqa: F403\n"
        'PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]\n'
    )
    path = os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH", "")]))
    return {"DJANGO_SETTINGS_MODULE": "relatch_bench_md5", "PYTHONPATH": path}


def run_without_argon2(server: Server, options: argparse.Namespace) -> int:
    """The same load with a cheap hasher: the server's CPU per sign-in is then all the rest."""
    accounts, cookie_name, _ = make_accounts(server, options.accounts)
    cpu_start = tree_cpu(server.process.pid)
    rate, tally = signin_rate(server, accounts, cookie_name, options.clients, options.duration)
    cpu_end = tree_cpu(server.process.pid)
    per_signin = sum(cpu_end[r] - cpu_start[r] for r in cpu_end) / max(tally.finished, 1)
    print(f"Sign-in without Argon2 (MD5 hasher), {options.clients} clients, "
          f"{options.workers} gunicorn worker(s) x 8 threads, {options.duration:.0f} s")
    print(f"  sign-ins/s: {rate:.2f}, errors: {len(tally.errors)}; server CPU per sign-in "
          f"(3 requests) besides the hash: {per_signin * 1000:.1f} ms")
    for error in sorted(set(tally.errors))[:5]:
        print(f"  error: {error}")
    return 1 if tally.errors else 0


def run(server: Server, options: argparse.Namespace) -> int:
    if options.without_argon2:
        return run_without_argon2(server, options)
    accounts, cookie_name, encoded = make_accounts(server, options.accounts)
    # As many verifications at a time as the clients can cause (one password POST each),
    # spread over the same number of processes: on a machine shared with other work, the
    # scheduler's share of the cores then matches too.
    threads = max(1, -(-options.clients // options.workers))
    before, cpu_a = argon2_rate(encoded, options.workers, threads, options.duration / 2)
    cpu_start = tree_cpu(server.process.pid)
    rate, tally = signin_rate(server, accounts, cookie_name, options.clients, options.duration)
    cpu_end = tree_cpu(server.process.pid)
    roles = {role: cpu_end[role] - cpu_start[role] for role in cpu_end}
    server_cpu = sum(roles.values())
    after, cpu_b = argon2_rate(encoded, options.workers, threads, options.duration / 2)
    bound = (before + after) / 2
    per_verify = (cpu_a + cpu_b) / 2
    per_signin = server_cpu / max(tally.finished, 1)
    ratio = rate / bound if bound else 0.0
    database = "PostgreSQL" if options.database_url else "SQLite"
    algorithm, params = encoded.split("$")[1], encoded.split("$")[3]
    print(f"Sign-in: password + TOTP from a known device, {options.clients} clients, "
          f"{options.workers} gunicorn worker(s) x 8 threads, {database}, "
          f"{options.duration:.0f} s; {algorithm} {params}; "
          f"{os.cpu_count()} CPUs shared with other work")
    print(f"  Argon2 verifications/s, {options.workers} processes x {threads} threads: "
          f"{before:.2f} before, "
          f"{after:.2f} after the load; bound {bound:.2f}/s")
    p50 = statistics.median(tally.latencies) if tally.latencies else 0.0
    p95 = (statistics.quantiles(tally.latencies, n=20)[-1] if len(tally.latencies) > 1
           else p50)
    print(f"  sign-ins/s: {rate:.2f} ({tally.signins} in {options.duration:.0f} s; "
          f"latency p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms), errors: {len(tally.errors)}")
    print(f"  CPU: {per_verify * 1000:.0f} ms per Argon2 verification; the server used "
          f"{per_signin * 1000:.0f} ms per sign-in (3 requests), so "
          f"{max(per_signin - per_verify, 0) * 1000:.0f} ms of it is everything else "
          "(less noisy than the rates)")
    print("  server CPU by process: " + ", ".join(
        f"{role} {seconds:.1f} s" for role, seconds in roles.items()))
    print(f"  ratio sign-ins / Argon2 bound: {ratio:.0%} (target >= {TARGET:.0%})")
    for error in sorted(set(tally.errors))[:5]:
        print(f"  error: {error}")
    ok = ratio >= TARGET and not tally.errors
    print("OK" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
