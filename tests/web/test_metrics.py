"""/metrics (issue 22): who may read it, what it counts, and totals across web processes.

The last tests run a real ``relatch serve`` with several gunicorn processes (and one with a
PostgreSQL server of their own, stopped under it), as an operator's Prometheus sees it.
"""

import os
import signal
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from relatch.audit.models import EventKind
from relatch.audit.services import record_event
from relatch.index.simple.response_cache import kept_responses
from relatch.wsgi import application
from tests import private_postgres
from tests.conftest import PASSWORD
from tests.index.wsgi_calls import call_app
from tests.serving import Server, direct_children, running_server, wait_for

OUTSIDER = "203.0.113.9"
TOKEN = "metrics-token-for-tests-0123456789"  # noqa: S105


def value(name: str, **labels: str) -> float:
    """This process's count (the suite runs without PROMETHEUS_MULTIPROC_DIR)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scraped(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, by name and labels."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


@pytest.mark.django_db
def test_loopback_reads_the_metrics_in_prometheus_text() -> None:
    response = Client().get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    assert "no-store" in response["Cache-Control"]
    samples = scraped(response.content.decode())
    assert samples[("relatch_database_up", ())] == 1
    assert ("relatch_tasks_due", ()) in samples
    assert ("relatch_mail_pending", ()) in samples


@pytest.mark.django_db
def test_anyone_else_gets_the_same_404_as_for_no_page() -> None:
    client = Client(REMOTE_ADDR=OUTSIDER)
    response = client.get("/metrics")
    nothing = client.get("/no-such-page-here")
    assert response.status_code == nothing.status_code == 404
    assert b"relatch_" not in response.content
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


@pytest.mark.django_db
def test_the_token_opens_it_and_nothing_else_does(settings: Any) -> None:
    settings.METRICS_TOKEN = TOKEN
    client = Client(REMOTE_ADDR=OUTSIDER)
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}x").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}").status_code == 404


@pytest.mark.django_db
def test_allowed_networks_use_the_address_the_app_trusts(settings: Any) -> None:
    from ipaddress import ip_network

    settings.METRICS_ALLOW = (ip_network("198.51.100.0/24"),)
    assert Client(REMOTE_ADDR="198.51.100.7").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 404
    # Behind one proxy the client is the proxy's last X-Forwarded-For entry: a client that
    # writes an allowed address in front of its own gains nothing, and the proxy's own
    # loopback address no longer opens it either.
    settings.RELATCH_PROXY_COUNT = 1
    settings.METRICS_ALLOW = (ip_network("127.0.0.1/32"),)
    via_proxy = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="127.0.0.1, 192.0.2.4")
    assert via_proxy.get("/metrics").status_code == 404


def test_bad_networks_stop_the_start(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = {**os.environ, "RELATCH_METRICS_ALLOW": "10.0.0.0/33", "RELATCH_DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", "import relatch.settings"], env=env,
                          capture_output=True, text=True, check=False, timeout=60)
    assert "RELATCH_METRICS_ALLOW must be comma-separated networks" in done.stderr


@pytest.mark.django_db
def test_requests_are_counted_and_timed_by_url_name() -> None:
    before = value("relatch_http_requests_total", route="conduct", status="2xx")
    timed = value("relatch_http_request_duration_seconds_count", route="conduct")
    missing = value("relatch_http_requests_total", route="unmatched", status="4xx")
    client = Client()
    assert client.get("/conduct/").status_code == 200
    assert client.get("/conduct/").status_code == 200
    assert client.get("/no-such-page-here").status_code == 404
    assert value("relatch_http_requests_total", route="conduct", status="2xx") == before + 2
    assert value("relatch_http_request_duration_seconds_count", route="conduct") == timed + 2
    assert value("relatch_http_requests_total", route="unmatched", status="4xx") == missing + 1


@pytest.mark.django_db(transaction=True)
def test_kept_pages_count_hits_and_misses_under_the_pages_name() -> None:
    kept_responses.clear()
    hits, misses = value("relatch_kept_pages_total", outcome="hit"), value(
        "relatch_kept_pages_total", outcome="miss")
    served = value("relatch_http_requests_total", route="simple:index", status="2xx")
    assert call_app(application, "/simple/")[0] == 200
    assert call_app(application, "/simple/")[0] == 200
    assert call_app(application, "/simple/")[0] == 200
    assert value("relatch_kept_pages_total", outcome="miss") == misses + 1
    assert value("relatch_kept_pages_total", outcome="hit") == hits + 2
    # Hits never reach Django, and still count as requests for the index page.
    assert value("relatch_http_requests_total", route="simple:index", status="2xx") == served + 3


def test_failed_sign_ins_are_counted_by_kind(client: Client, user: Any) -> None:
    before = value("relatch_security_events_total", kind="signin_failed")
    response = client.post("/account/login/", {"identifier": "alice", "password": "wrong!!!"})
    assert response.status_code == 200
    assert value("relatch_security_events_total", kind="signin_failed") == before + 1
    good = value("relatch_security_events_total", kind="signin_succeeded")
    client.post("/account/login/", {"identifier": "alice", "password": PASSWORD})
    assert value("relatch_security_events_total", kind="signin_succeeded") == good + 1


@pytest.mark.django_db(transaction=True)
def test_an_event_rolled_back_is_not_counted(make_user: Any) -> None:
    from django.db import transaction

    alice = make_user()
    before = value("relatch_security_events_total", kind="recovery_requested")
    with pytest.raises(RuntimeError), transaction.atomic():
        record_event(user=alice, kind=EventKind.RECOVERY_REQUESTED)
        raise RuntimeError("the service failed after writing its event")
    assert value("relatch_security_events_total", kind="recovery_requested") == before
    with transaction.atomic():
        record_event(user=alice, kind=EventKind.RECOVERY_REQUESTED)
    assert value("relatch_security_events_total", kind="recovery_requested") == before + 1


@pytest.mark.django_db
def test_the_task_queue_depth_and_age_are_read_at_each_scrape() -> None:
    DBTaskResult.objects.create(
        task_path="relatch.recovery.tasks.recovery_tick", args_kwargs={"args": [], "kwargs": {}},
        backend_name="default", queue_name="default",
        run_after=timezone.now() - timedelta(minutes=20),
    )
    samples = scraped(Client().get("/metrics").content.decode())
    assert samples[("relatch_tasks_due", ())] == 1
    assert 20 * 60 <= samples[("relatch_tasks_oldest_due_age_seconds", ())] < 21 * 60
    assert samples[("relatch_tasks_ready", ())] == 1


# A real ``relatch serve``.

def gunicorn_workers(server: Server) -> set[int]:
    """The web processes: the children of gunicorn's master."""
    masters = [pid for pid, command in direct_children(server.process.pid).items()
               if "gunicorn" in command]
    assert masters, server.output()
    return set(direct_children(masters[0]))


def pids_with_counts(metrics_dir: Path) -> set[int]:
    return {int(p.stem.rpartition("_")[2]) for p in metrics_dir.glob("counter_*.db")}


def live_total(server: Server) -> float:
    status, body, _ = server.get("/metrics")
    assert status == 200, body
    return scraped(body.decode()).get(
        ("relatch_http_requests_total", (("route", "ops:live"), ("status", "2xx"))), 0.0)


def burst(server: Server, count: int) -> None:
    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(lambda _: server.get("/health/live")[0], range(count)))
    assert statuses == [200] * count


@pytest.mark.slow
@pytest.mark.own_database  # SQLite in its own data directory, whatever the suite runs on
def test_a_scrape_sums_every_web_process_even_dead_ones(tmp_path: Path) -> None:
    with running_server(tmp_path, RELATCH_WEB_WORKERS="3") as server:
        metrics_dir = server.data_dir / "metrics"
        workers = wait_for(lambda: len(gunicorn_workers(server)) == 3 and gunicorn_workers(
            server), 120)
        assert workers, server.output()
        # Parallel bursts until at least two web processes have answered some (the kernel
        # picks which process takes a connection); a bound, not a speed target.
        sent = 0
        while len(pids_with_counts(metrics_dir) & workers) < 2 and sent < 2000:
            burst(server, 40)
            sent += 40
        assert len(pids_with_counts(metrics_dir) & workers) >= 2, sent
        # Whichever process answers the scrape, the total is every process's.
        assert {live_total(server) for _ in range(6)} == {sent}

        # A web process killed: gunicorn starts another, and its counts stay in the totals.
        victim = sorted(pids_with_counts(metrics_dir) & workers)[0]
        os.kill(victim, signal.SIGKILL)
        assert wait_for(lambda: len(gunicorn_workers(server) - {victim}) == 3, 120), (
            server.output())
        burst(server, 40)
        assert {live_total(server) for _ in range(6)} == {sent + 40}

        # Kept pages are counted where they are sent, hits under the page's URL name.
        for _ in range(12):
            assert server.get("/simple/")[0] == 200
        samples = scraped(server.get("/metrics")[1].decode())
        hits = samples[("relatch_kept_pages_total", (("outcome", "hit"),))]
        misses = samples[("relatch_kept_pages_total", (("outcome", "miss"),))]
        assert hits >= 1 and hits + misses == 12, samples
        assert samples[("relatch_http_requests_total",
                        (("route", "simple:index"), ("status", "2xx")))] == 12
        # The worker beats: its heartbeat is seconds old.
        assert samples[("relatch_worker_heartbeat_age_seconds", ())] < 60
        # gunicorn ran its child_exit hook for the killed process without complaint.
        assert "Traceback" not in server.output(), server.output()


@pytest.mark.slow
@pytest.mark.own_database
def test_ready_turns_503_naming_the_database_while_it_is_down(tmp_path: Path) -> None:
    if reason := private_postgres.available():
        pytest.skip(reason)
    with private_postgres.private_postgres() as postgres, running_server(
        tmp_path, RELATCH_DATABASE_URL=postgres.create_database("relatch")
    ) as server:
        assert wait_for(lambda: server.get("/health/ready")[0] == 200, 60), server.get(
            "/health/ready")
        postgres.stop("fast")
        try:
            status, body, _ = server.get("/health/ready")
            assert status == 503, body
            assert b'"database: connection refused"' in body
            assert b'"status": "not ready"' in body
            # Alive all the same: an orchestrator must not restart it for the database.
            assert server.get("/health/live")[:2] == (200, b"ok\n")
            # A scrape still answers, and says so.
            samples = scraped(server.get("/metrics")[1].decode())
            assert samples[("relatch_database_up", ())] == 0
            assert "Not ready: database: connection refused" in server.output()
        finally:
            postgres.start()
        assert wait_for(lambda: server.get("/health/ready")[0] == 200, 60), server.get(
            "/health/ready")
