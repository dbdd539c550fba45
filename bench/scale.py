"""The staff and account pages stay fast on a big database (issue 7 §1, "Scale").

Fills a PostgreSQL database of its own with 1 M users (each with a verified address),
200 k projects (each with an owner), 100 k recovery requests (10 % open; one message and one
state transition each) and 10 M security events (1 % of them on one account), with set-based
SQL (``INSERT ... SELECT generate_series``) after running the migrations into it. ``--scale``
multiplies every count (0.01 for a quick run). A small database (``--base-scale``, default
0.001: 1,000 users, 10 k events) is filled the same way in the same run: the baseline.

Then, on each database, in a fresh process (Django's test client, the real middleware, views
and templates, no server), it times ``--repeat`` requests of each page after a warm-up:

- ``desk queue``: /desk/ as a staff member with a second factor (the open requests);
- ``desk queue, every state``: /desk/?state=all;
- ``desk detail``: /desk/<id>/ of an open request for the account with the most events;
- ``desk detail, few changes``: the same for an account with as many events, all of them
  sign-ins and API uploads (``user2``): the page lists the account's changes, and must find
  the few there are without reading every event;
- ``user lookup``: /user/<name>/, the public page of an account, found by username ignoring
  case as sign-in, password reset, recovery filing and the staff API do;
- ``user search``: the desk's /desk/users/?q= by an exact username (which also lists the
  usernames it starts), by the first three letters that every generated username shares (a
  million matches, 25 shown), and by an exact address;
- ``history``: /account/history/ of the account with the most events (first page), and
  ``history, page 1000`` (a deep page, reached by its "Older events" cursor);

and reports p50 and p95. ``/simple/`` (every project) is read once to the end while
tracemalloc follows the Python heap: its peak tells whether the page streams or loads every
project at once.

    .venv/bin/python bench/scale.py [--scale 1] [--repeat 50] [--keep] [--reuse] [--explain]
        [--server postgresql://postgres@127.0.0.1:5432]

``--keep`` leaves the big database (``relatch_scale``) in place and ``--reuse`` measures an
existing one of the same scale again without filling it (the fill takes minutes at scale 1).
``--explain`` prints EXPLAIN ANALYZE for the slowest query of each page on the big database.

``--against REF`` (e.g. ``HEAD``) measures a change against a commit in one run, on the same
big database: REF's ``src/`` (``git archive``) runs from this venv through PYTHONPATH, and
before each of its rounds the working tree's newer migrations are unapplied (new indexes
dropped), then applied again for the working tree's round; ``--rounds`` each, in alternating
order, and the median per page. The OK/FAIL line is then the working tree's medians.
Exits 1 when a page's p95 on the big database is 50 ms or more, or /simple/ is not streamed.
"""
# ruff: noqa: T201, S603, S607, S608  (a script run by hand: prints, runs itself and git, SQL from numbers)

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
RELATCH = Path(sys.executable).with_name("relatch")
TARGET_MS = 50.0
# /simple/ streams when its peak Python heap stays far below the page's size.
STREAM_PEAK_MB = 16.0
BIG, BASE = "relatch_scale", "relatch_scale_base"
SIZES = {"users": 1_000_000, "projects": 200_000, "requests": 100_000, "events": 10_000_000}
HEAVY_SHARE = 100  # one event in this many belongs to the account with the most events
EVENT_CHUNK = 1_000_000
# Bumped whenever fill_steps changes what it makes: --reuse refills a database of another.
FILL_VERSION = 2


# --- filling -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Counts:
    users: int
    projects: int
    requests: int
    events: int

    @classmethod
    def at(cls, scale: float) -> "Counts":
        return cls(**{name: max(10, int(size * scale)) for name, size in SIZES.items()})


def database_url(server: str, name: str) -> str:
    return f"{server.rstrip('/')}/{name}"


def admin(server: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(database_url(server, "postgres"), autocommit=True) as connection:
        connection.execute(statement)


def recreate(server: str, name: str) -> None:
    admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin(server, f'CREATE DATABASE "{name}"')


def relatch_env(url: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELATCH_")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return {**env, "RELATCH_DATABASE_URL": url, "RELATCH_DATA_DIR": str(data_dir),
            "RELATCH_SECRET_KEY": "bench-scale-not-secret"}


def migrate(url: str, data_dir: Path) -> None:
    subprocess.run([str(RELATCH), "migrate", "--verbosity", "0"], check=True,
                   env=relatch_env(url, data_dir))


def fill_steps(c: Counts) -> list[tuple[str, list[str]]]:
    """(label, SQL statements) in order; ids are counted from each table's smallest id."""
    users = f"""
        INSERT INTO accounts_user (password, last_login, is_superuser, username, name,
            is_active, is_staff, is_frozen, date_joined, failed_signins, last_failed_signin_at)
        SELECT '!bench', NULL, false, 'user' || i, 'User ' || i, true, false, false,
               now() - make_interval(secs => i), 0, NULL
        FROM generate_series(1, {c.users}) AS i"""
    staff = """
        INSERT INTO accounts_user (password, last_login, is_superuser, username, name,
            is_active, is_staff, is_frozen, date_joined, failed_signins, last_failed_signin_at)
        VALUES ('!bench', NULL, false, 'deskstaff', 'Desk Staff', true, true, false, now(), 0,
                NULL)"""
    emails = """
        INSERT INTO accounts_email (user_id, address, "primary", verified, verified_at,
            created_at, unverified_reason, bounce_detail)
        SELECT id, username || '@example.org', true, true, date_joined, date_joined, '', ''
        FROM accounts_user"""
    totp = """
        INSERT INTO mfa_totpdevice (user_id, encrypted_secret, last_used_step, created_at,
            last_used_at)
        SELECT id, 'not-a-secret', 0, now(), NULL FROM accounts_user
        WHERE username = 'deskstaff'"""
    first_user = "(SELECT min(id) FROM accounts_user)"
    projects = f"""
        INSERT INTO index_project (name, normalized_name, created_at, last_changed_at)
        SELECT 'Project_' || i, 'project-' || i, now() - make_interval(secs => i),
               now() - make_interval(secs => i)
        FROM generate_series(1, {c.projects}) AS i"""
    roles = f"""
        INSERT INTO index_role (project_id, user_id, kind, created_at)
        SELECT p.id, {first_user} + (p.id * 5) % {c.users}, 'owner', p.created_at
        FROM index_project p"""
    open_states = "ARRAY['submitted', 'awaiting_proof', 'awaiting_approval']"
    closed_states = "ARRAY['completed', 'denied', 'cancelled', 'closed_no_response']"
    requests = f"""
        INSERT INTO recovery_recoveryrequest (public_id, link_nonce, username_claimed, user_id,
            contact_email, contact_confirmed_at, still_has, description,
            agreed_to_code_of_conduct, acknowledged_review_time, state, created_at, updated_at,
            wait_ends_at, awaiting_requester_since, assigned_to_id, override_reason, closed_at,
            contact_code_digest, contact_code_expires_at, contact_code_attempts, reminders_sent,
            completes_automatically, held_from)
        SELECT 'R' || lpad(i::text, 12, '0'), md5(i::text), u.username, u.id,
               'contact' || i || '@example.net', t, '["password"]'::jsonb, 'Lost my phone.',
               true, true,
               CASE WHEN i % 10 = 0 THEN ({open_states})[1 + (i / 10) % 3]
                    ELSE ({closed_states})[1 + i % 4] END,
               t, t, NULL, NULL, NULL, '', CASE WHEN i % 10 = 0 THEN NULL ELSE t END,
               '', NULL, 0, 0, false, ''
        FROM generate_series(1, {c.requests}) AS i
        CROSS JOIN LATERAL (SELECT now() - make_interval(mins => {c.requests} - i) AS t) AS at
        JOIN accounts_user u ON u.id = {first_user} + (i * 37) % {c.users}"""
    # The detail page's request: an open one, for the account with the most events.
    heavy_request = f"""
        UPDATE recovery_recoveryrequest SET user_id = {first_user}, username_claimed = 'user1'
        WHERE id = (SELECT min(id) FROM recovery_recoveryrequest WHERE state = 'submitted')"""
    # And one for the account whose many events are almost all sign-ins and API uploads: the
    # desk's list of account changes must not read them all to find the few changes.
    quiet_request = f"""
        UPDATE recovery_recoveryrequest SET user_id = {first_user} + 1,
            username_claimed = 'user2'
        WHERE id = (SELECT min(id) FROM recovery_recoveryrequest WHERE state = 'submitted'
                    AND username_claimed <> 'user1')"""
    messages = """
        INSERT INTO recovery_recoverymessage (request_id, author, staff_id, body, created_at)
        SELECT r.id, CASE WHEN r.id % 2 = 0 THEN 'staff' ELSE 'requester' END,
               CASE WHEN r.id % 2 = 0 THEN s.id END, 'Can you tell us more?',
               r.created_at + interval '1 hour'
        FROM recovery_recoveryrequest r
        CROSS JOIN (SELECT id FROM accounts_user WHERE username = 'deskstaff') AS s"""
    transitions = """
        INSERT INTO recovery_recoverytransition (request_id, from_state, to_state, actor,
            staff_id, reason, created_at)
        SELECT id, 'submitted', state, 'system', NULL, '', updated_at
        FROM recovery_recoveryrequest WHERE state <> 'submitted'"""
    steps = [
        ("users", [users, staff]), ("emails", [emails, totp]), ("projects", [projects]),
        ("roles", [roles]), ("recovery requests", [requests, heavy_request, quiet_request]),
        ("messages and transitions", [messages, transitions]),
    ]
    kinds = ("ARRAY['signin_succeeded', 'signin_failed', 'signed_out', 'reauth_succeeded', "
             "'api_token_used', 'password_changed', 'signin_succeeded', 'totp_added']")
    quiet_kinds = "ARRAY['signin_succeeded', 'api_token_used']"
    for start in range(1, c.events + 1, EVENT_CHUNK):
        end = min(start + EVENT_CHUNK - 1, c.events)
        events = f"""
            INSERT INTO audit_securityevent (user_id, kind, factor, created_at, ip_address,
                user_agent, details)
            SELECT CASE WHEN i % {HEAVY_SHARE} = 0 THEN {first_user}
                        WHEN i % {HEAVY_SHARE} = {HEAVY_SHARE // 2} THEN {first_user} + 1
                        ELSE {first_user} + (i * 7919) % {c.users} END,
                   CASE WHEN i % {HEAVY_SHARE} = {HEAVY_SHARE // 2}
                        THEN ({quiet_kinds})[1 + (i / {HEAVY_SHARE}) % 2]
                        ELSE ({kinds})[1 + (i / {HEAVY_SHARE}) % 8] END, 'password',
                   now() - make_interval(secs => i), '192.0.2.1'::inet,
                   'Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0', '{{}}'::jsonb
            FROM generate_series({start}::bigint, {end}::bigint) AS i"""
        steps.append((f"security events {start:,}-{end:,}", [events]))
    steps.append(("ANALYZE", ["VACUUM ANALYZE"]))
    return steps


def fill(server: str, name: str, counts: Counts, data_dir: Path) -> dict[str, float]:
    """Create ``name`` afresh, migrate it and fill it; seconds per step."""
    import psycopg

    timings: dict[str, float] = {}
    started = time.monotonic()
    recreate(server, name)
    url = database_url(server, name)
    migrate(url, data_dir)
    timings["create + migrate"] = time.monotonic() - started
    with psycopg.connect(url, autocommit=True) as connection:
        # Ten million rows go in far faster without the secondary indexes (each insert would
        # otherwise touch a random page of each); they are built again, as defined, after.
        indexes = connection.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'audit_securityevent'"
            " AND indexname NOT IN (SELECT conname FROM pg_constraint)").fetchall()
        for index_name, _ in indexes:
            connection.execute(f'DROP INDEX "{index_name}"')  # type: ignore[arg-type]
        for label, statements in fill_steps(counts):
            if label == "ANALYZE":
                started = time.monotonic()
                for _, definition in indexes:
                    connection.execute(definition)  # type: ignore[arg-type]
                timings["event indexes"] = time.monotonic() - started
                print(f"  {name}: event indexes {timings['event indexes']:.1f} s", flush=True)
            started = time.monotonic()
            for statement in statements:
                connection.execute(statement)  # type: ignore[arg-type]
            timings[label] = time.monotonic() - started
            print(f"  {name}: {label} {timings[label]:.1f} s", flush=True)
        connection.execute(
            "CREATE TABLE IF NOT EXISTS bench_scale (counts text)")
        connection.execute("DELETE FROM bench_scale")
        connection.execute("INSERT INTO bench_scale VALUES (%s)",
                           (json.dumps({**counts.__dict__, "fill": FILL_VERSION}),))
    return timings


def filled_counts(server: str, name: str) -> Counts | None:
    import psycopg

    try:
        with psycopg.connect(database_url(server, name)) as connection:
            row = connection.execute("SELECT counts FROM bench_scale").fetchone()
    except psycopg.Error:
        return None
    if not row:
        return None
    stored = json.loads(row[0])
    if stored.pop("fill", 1) != FILL_VERSION:
        return None  # filled by an older fill_steps: not the data the pages expect
    return Counts(**stored)


# --- measuring (in a child process per database) -----------------------------------------------


def measure(url: str, repeat: int, explain: bool) -> dict[str, object]:
    """Time each page on the database at ``url``; runs inside a child process."""
    data_dir = Path(tempfile.mkdtemp(prefix="relatch-scale-"))
    os.environ.update(relatch_env(url, data_dir))
    os.environ["DJANGO_SETTINGS_MODULE"] = "relatch.settings"
    import django

    django.setup()
    from django.test import Client

    from relatch.accounts.models import User
    from relatch.recovery.models import RecoveryRequest

    staff = User.objects.get(username="deskstaff")
    heavy = User.objects.order_by("id").first()
    assert heavy is not None
    detail = RecoveryRequest.objects.filter(user=heavy, state="submitted").first()
    quiet = RecoveryRequest.objects.filter(user__username="user2", state="submitted").first()
    assert detail is not None
    assert quiet is not None
    desk, owner = signed_in_client(Client, staff), signed_in_client(Client, heavy)
    anonymous = Client(SERVER_NAME="localhost")
    pages: dict[str, tuple[Client, str]] = {
        "desk queue": (desk, "/desk/"),
        "desk queue, every state": (desk, "/desk/?state=all"),
        "desk detail": (desk, f"/desk/{detail.public_id}/"),
        "desk detail, few changes": (desk, f"/desk/{quiet.public_id}/"),
        "user lookup": (anonymous, f"/user/{heavy.username.upper()}/"),
        "user search, username": (desk, f"/desk/users/?q={heavy.username.upper()}"),
        "user search, prefix": (desk, f"/desk/users/?q={heavy.username[:3]}"),
        "user search, address": (desk, f"/desk/users/?q={heavy.emails.get().address.upper()}"),
        "history": (owner, "/account/history/"),
        "history, page 1000": (owner, deep_history_path(heavy, page=1000)),
    }
    results: dict[str, object] = {}
    for label, (client, path) in pages.items():
        results[label] = time_page(client, path, repeat)
        if explain:
            explain_slowest(label, client, path)
    results["/simple/"] = simple_memory(anonymous)
    return results


def deep_history_path(user: object, *, page: int) -> str:
    """The URL of the history's ``page``-th page, as following "Older events" would reach it:
    the cursor of the last event on the page before (found once here, by OFFSET, not timed).
    A history with fewer pages gives its last page."""
    from urllib.parse import urlencode

    from relatch.audit.cursors import history_cursor
    from relatch.audit.models import SecurityEvent
    from relatch.audit.queries import HISTORY_PAGE_SIZE

    newest_first = SecurityEvent.objects.filter(user=user).order_by("-created_at", "-id")
    # The small baseline has fewer pages: its deepest page stands in for page 1000.
    page = min(page, -(-newest_first.count() // HISTORY_PAGE_SIZE))
    if page <= 1:
        return "/account/history/"
    anchor = newest_first[(page - 1) * HISTORY_PAGE_SIZE - 1]
    return "/account/history/?" + urlencode({"before": history_cursor(user=user, event=anchor)})


def signed_in_client(client_class: Callable[..., object], user: object) -> object:
    """A test client signed in as ``user``, as the sign-in flow leaves it (a listed session)."""
    from relatch.accounts.models import UserSession
    from relatch.accounts.sessions.services import session_digest

    client = client_class(SERVER_NAME="localhost")
    client.force_login(user)  # type: ignore[attr-defined]
    key = client.session.session_key  # type: ignore[attr-defined]
    UserSession.objects.get_or_create(user=user, session_digest=session_digest(key))
    return client


def fetch(client: object, path: str) -> int:
    response = client.get(path)  # type: ignore[attr-defined]
    if response.status_code != 200:
        raise SystemExit(f"{path}: status {response.status_code}")
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return len(body)


def time_page(client: object, path: str, repeat: int) -> dict[str, float]:
    for _ in range(3):
        fetch(client, path)  # warm-up: templates, connection, the database's cache
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fetch(client, path)
        times.append((time.perf_counter() - started) * 1000)
    return {"p50": statistics.median(times),
            "p95": statistics.quantiles(times, n=20)[-1] if len(times) > 1 else times[0]}


def explain_slowest(label: str, client: object, path: str) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        fetch(client, path)
    queries = sorted(captured.captured_queries, key=lambda q: -float(q["time"]))
    print(f"\n== {label} ({path}): {len(queries)} queries; slowest:", file=sys.stderr)
    with connection.cursor() as cursor:
        for query in queries[:2]:
            print(f"-- {float(query['time']) * 1000:.1f} ms: {query['sql'][:600]}",
                  file=sys.stderr)
            if query["sql"].lstrip().upper().startswith("SELECT"):
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + query["sql"])
                print("\n".join(row[0] for row in cursor.fetchall()), file=sys.stderr)


def simple_memory(client: object) -> dict[str, float]:
    """Peak Python heap while /simple/ is read to the end, and the page's size."""
    import tracemalloc

    fetch(client, "/simple/")  # warm-up
    tracemalloc.start()
    started = time.perf_counter()
    size = fetch_streamed(client, "/simple/")
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"peak_mb": peak / 2**20, "size_mb": size / 2**20, "ms": seconds * 1000}


def fetch_streamed(client: object, path: str) -> int:
    """Read the body chunk by chunk, keeping none: only the server side's memory counts."""
    response = client.get(path)  # type: ignore[attr-defined]
    if not response.streaming:
        return len(response.content)
    return sum(len(chunk) for chunk in response.streaming_content)


# --- measuring each database --------------------------------------------------------------------


Figures = dict[str, dict[str, float]]


def run_measure(url: str, repeat: int, explain: bool, src: Path | None = None) -> Figures:
    """Measure in a fresh process; with ``src``, that source tree's code (another commit's)."""
    env = {**os.environ, "PYTHONPATH": str(src)} if src else None
    done = subprocess.run(
        [sys.executable, __file__, "--measure", url, "--repeat", str(repeat),
         *(["--explain"] if explain else [])],
        capture_output=True, text=True, check=False, cwd=ROOT, env=env,
    )
    sys.stderr.write(done.stderr if explain or done.returncode else "")
    if done.returncode != 0:
        raise SystemExit(f"measuring {url} failed:\n{done.stdout}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# --- against another commit --------------------------------------------------------------------


def unpack_source(ref: str, into: Path) -> Path:
    """``ref``'s src/ (git archive), run from this venv through PYTHONPATH."""
    import io
    import tarfile

    archive = subprocess.run(["git", "archive", ref, "src"], cwd=ROOT, check=True,
                             capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def last_migrations(src: Path) -> dict[str, str]:
    """Each app's last migration in a source tree (they are numbered, one line per app)."""
    found = sorted((src / "relatch").glob("*/migrations/[0-9][0-9][0-9][0-9]_*.py"))
    return {path.parent.parent.name: path.stem for path in found}


def schema_of(url: str, migrations: dict[str, str] | None) -> None:
    """Bring the big database to another commit's migrations (``migrations``: its last ones;
    the working tree's newer ones are unapplied, e.g. their indexes dropped, so the other code
    runs on its own schema), or with None to the working tree's."""
    import psycopg

    with tempfile.TemporaryDirectory(prefix="relatch-scale-") as tmp:
        if migrations is None:
            migrate(url, Path(tmp))
        else:
            for app, ours in last_migrations(ROOT / "src").items():
                if migrations.get(app, "zero") != ours:
                    subprocess.run(
                        [str(RELATCH), "migrate", app, migrations.get(app, "zero"),
                         "--verbosity", "0"], check=True, env=relatch_env(url, Path(tmp)))
    # An index just built leaves its pages to be written: written now, not during the measure.
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("CHECKPOINT")


def against(url: str, ref: str, rounds: int, repeat: int) -> tuple[Figures, Figures]:
    """The big database measured with ``ref``'s code and schema and with the working tree's,
    ``rounds`` times each in alternating order (load changes hit both alike); per page the
    median of the rounds' p50 and p95, ``ref``'s first."""
    runs: dict[str, list[Figures]] = {"ref": [], "tree": []}
    with tempfile.TemporaryDirectory(prefix="relatch-scale-ref-") as tmp:
        src = unpack_source(ref, Path(tmp))
        theirs = last_migrations(src)
        for n in range(rounds):
            for who in ("ref", "tree") if n % 2 == 0 else ("tree", "ref"):
                started = time.monotonic()
                schema_of(url, theirs if who == "ref" else None)
                print(f"  round {n + 1}, {ref if who == 'ref' else 'working tree'}: schema "
                      f"{time.monotonic() - started:.0f} s", flush=True)
                runs[who].append(run_measure(url, repeat, False, src if who == "ref" else None))
    schema_of(url, None)  # leave it as the working tree's code expects
    return _medians(runs["ref"]), _medians(runs["tree"])


def _medians(runs: list[Figures]) -> Figures:
    return {page: {key: statistics.median(run[page][key] for run in runs) for key in figures}
            for page, figures in runs[0].items()}


def report_against(ref: str, theirs: Figures, ours: Figures, rounds: int) -> None:
    print(f"\nAgainst {ref} (its code and schema on the same database; median of {rounds} "
          "rounds each, alternating):")
    print(f"  {'page':28} {'p95 ' + ref[:10]:>15} {'p95 now':>8}  ratio   p50 then → now")
    for label, figures in ours.items():
        if label == "/simple/":
            continue
        then = theirs[label]
        print(f"  {label:28} {then['p95']:15.1f} {figures['p95']:8.1f}  "
              f"{figures['p95'] / then['p95']:5.2f}x  {then['p50']:6.1f} → {figures['p50']:.1f}")


# --- the report --------------------------------------------------------------------------------


def report(big: Figures, base: Figures, counts: Counts, base_counts: Counts,
           repeat: int) -> bool:
    print(f"\nScale: PostgreSQL, {counts.users:,} users, {counts.projects:,} projects, "
          f"{counts.requests:,} recovery requests, {counts.events:,} security events "
          f"(baseline: {base_counts.users:,} / {base_counts.projects:,} / "
          f"{base_counts.requests:,} / {base_counts.events:,}); Django test client, "
          f"{repeat} requests per page; {os.cpu_count()} CPUs shared with other work")
    print(f"  {'page':28} {'p50 ms':>8} {'p95 ms':>8}   {'base p95':>8}  ratio")
    ok = True
    for label, figures in big.items():
        if label == "/simple/":
            continue
        base_p95 = base[label]["p95"]
        print(f"  {label:28} {figures['p50']:8.1f} {figures['p95']:8.1f}   {base_p95:8.1f}"
              f"  {figures['p95'] / base_p95:5.2f}x")
        ok = ok and figures["p95"] < TARGET_MS
    simple, simple_base = big["/simple/"], base["/simple/"]
    streamed = simple["peak_mb"] < STREAM_PEAK_MB
    print(f"  /simple/: {simple['size_mb']:.1f} MB page in {simple['ms']:.0f} ms, peak Python "
          f"heap {simple['peak_mb']:.1f} MB (baseline {simple_base['size_mb']:.2f} MB page, "
          f"{simple_base['peak_mb']:.1f} MB heap): "
          f"{'streamed' if streamed else 'NOT streamed'}")
    ok = ok and streamed
    print(f"{'OK' if ok else 'FAIL'}: target p95 < {TARGET_MS:.0f} ms per page, /simple/ "
          "streamed")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--base-scale", type=float, default=0.001)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--keep", action="store_true", help="keep the big database afterwards")
    parser.add_argument("--reuse", action="store_true", help="measure an existing big database")
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--against", metavar="REF",
                        help="also measure this commit's code (and schema) on the big database")
    parser.add_argument("--rounds", type=int, default=3, help="rounds each with --against")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # the child process
    options = parser.parse_args()
    if options.measure:
        print(json.dumps(measure(options.measure, options.repeat, options.explain)))
        return 0
    if urlsplit(options.server).path not in {"", "/"}:
        raise SystemExit("--server is the PostgreSQL server's URL, without a database name")
    counts, base_counts = Counts.at(options.scale), Counts.at(options.base_scale)
    try:
        with tempfile.TemporaryDirectory(prefix="relatch-scale-") as tmp:
            print(f"Filling {BASE} (baseline) and {BIG}:", flush=True)
            fill(options.server, BASE, base_counts, Path(tmp))
            if options.reuse and filled_counts(options.server, BIG) == counts:
                print(f"  {BIG}: reused (already filled at this scale)")
                migrate(database_url(options.server, BIG), Path(tmp))  # new indexes, if any
            else:
                started = time.monotonic()
                timings = fill(options.server, BIG, counts, Path(tmp))
                print(f"  {BIG}: filled in {time.monotonic() - started:.0f} s: "
                      + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()))
        base = run_measure(database_url(options.server, BASE), options.repeat, False)
        big_url = database_url(options.server, BIG)
        if options.against:
            theirs, big = against(big_url, options.against, options.rounds, options.repeat)
            report_against(options.against, theirs, big, options.rounds)
        if options.explain or not options.against:
            big = run_measure(big_url, options.repeat, options.explain)
        ok = report(big, base, counts, base_counts, options.repeat)
    finally:
        admin(options.server, f'DROP DATABASE IF EXISTS "{BASE}" WITH (FORCE)')
        if not options.keep:
            admin(options.server, f'DROP DATABASE IF EXISTS "{BIG}" WITH (FORCE)')
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
