"""/health/live and /health/ready (issue 22): what a load balancer and an operator read.

The database outage is tested against a real ``relatch serve`` in tests/web/test_metrics.py;
here the checks run in-process against this test's own storage, heartbeat and queues.
"""

import json
import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from relatch.index.simple.lean import is_installer_request
from relatch.notify.models import Outcome, OutgoingEmail
from relatch.ops import checks, views
from relatch.web.health.heartbeat import beat, heartbeat_path
from relatch.wsgi import application
from tests.index.wsgi_calls import call_app, environ

pytestmark = pytest.mark.django_db

OUTSIDER = "203.0.113.9"  # not in RELATCH_METRICS_ALLOW's default (loopback)


@pytest.fixture(autouse=True)
def data_dir(settings: Any, tmp_path: Path) -> Path:
    """A data directory of the test's own: the worker heartbeat lives there."""
    settings.DATA_DIR = tmp_path
    return tmp_path


def ready(client: Client, **extra: Any) -> tuple[int, dict[str, Any]]:
    response = client.get("/health/ready", **extra)
    assert response["Content-Type"] == "application/json"
    return response.status_code, json.loads(response.content)


def test_live_answers_ok_without_the_database_a_session_or_a_cache(
    django_assert_num_queries: Any
) -> None:
    client = Client()  # the suite's client runs queued tasks after each request: a query
    with django_assert_num_queries(0):
        response = client.get("/health/live")
    assert response.status_code == 200
    assert response.content == b"ok\n"
    assert "no-cache" in response["Cache-Control"] and "no-store" in response["Cache-Control"]
    assert "Set-Cookie" not in response
    assert client.head("/health/live").status_code == 200
    assert client.post("/health/live").status_code == 405


@pytest.mark.parametrize("path", ["/health/live", "/health/ready", "/metrics"])
def test_probes_and_scrapes_take_the_lean_path(path: str) -> None:
    """No session, user or CSRF machinery for a request a balancer sends every second."""
    assert is_installer_request(environ(path))
    assert not is_installer_request(environ(path, "POST"))


def test_live_through_the_wsgi_application() -> None:
    status, headers, body = call_app(application, "/health/live")
    assert (status, body) == (200, b"ok\n")
    assert "set-cookie" not in headers


def test_ready_names_each_check_and_its_state(client: Client, files_dir: Path) -> None:
    beat()
    status, body = ready(client)
    assert status == 200, body
    assert body["status"] == "ready"
    assert body["checks"]["database"] == {"state": "ok", "required": True, "detail": "answers"}
    assert body["checks"]["storage"] == {
        "state": "ok", "required": True, "detail": "writable and readable"}
    assert body["checks"]["worker"]["state"] == "ok"
    assert body["checks"]["worker"]["detail"].startswith("last seen ")
    assert body["checks"]["tasks"] == {"state": "ok", "required": False, "detail": "0 due"}
    assert body["checks"]["mail"] == {
        "state": "ok", "required": False, "detail": "0 waiting, 0 failing"}
    assert body["problems"] == []
    # The storage probe cleans up after itself.
    assert not any(p.is_file() for p in files_dir.rglob("*")), list(files_dir.rglob("*"))


def test_others_see_the_states_but_not_the_wording(client: Client, files_dir: Path) -> None:
    status, body = ready(client, REMOTE_ADDR=OUTSIDER)
    assert status == 200
    assert body["checks"]["database"] == {"state": "ok", "required": True}
    assert "problems" not in body


def test_storage_that_cannot_be_written_makes_the_host_not_ready(
    client: Client, settings: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    views._logged.clear()  # noqa: SLF001  (what earlier tests in this process logged)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the files directory should be")
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(blocker / "files")}}}
    status, body = ready(client)
    assert status == 503
    assert body["status"] == "not ready"
    assert body["checks"]["storage"]["state"] == "failing"
    assert "storage: not a directory" in body["problems"]
    assert "Not ready: storage: not a directory" in caplog.text
    ready(client)  # a balancer's next probe: the same failure is not logged again at once
    assert caplog.text.count("Not ready: storage: not a directory") == 1
    # The outsider learns that the storage fails, not where it is.
    status, body = ready(client, REMOTE_ADDR=OUTSIDER)
    assert status == 503 and body["checks"]["storage"] == {"state": "failing", "required": True}


def test_a_silent_worker_is_reported_but_keeps_the_host_in(
    client: Client, files_dir: Path
) -> None:
    status, body = ready(client)
    assert status == 200
    assert body["checks"]["worker"]["state"] == "unknown"
    assert "worker: never seen on this host" in body["problems"]

    beat()
    long_ago = time.time() - 14 * 60
    os.utime(heartbeat_path(), (long_ago, long_ago))
    status, body = ready(client)
    assert status == 200, "a slow worker must not take every host out of the pool"
    assert body["checks"]["worker"]["state"] == "stale"
    assert "worker: last seen 14 min ago" in body["problems"]


def test_tasks_waiting_long_are_reported(client: Client, files_dir: Path) -> None:
    beat()
    DBTaskResult.objects.create(
        task_path="relatch.recovery.tasks.recovery_tick", args_kwargs={"args": [], "kwargs": {}},
        backend_name="default", queue_name="default",
        run_after=timezone.now() - timedelta(minutes=20),
    )
    status, body = ready(client)
    assert status == 200
    assert body["checks"]["tasks"]["state"] == "behind"
    assert "tasks: 1 due, the oldest waiting 20 min" in body["problems"]


def test_failing_mail_is_reported(client: Client, files_dir: Path) -> None:
    beat()
    OutgoingEmail.objects.create(to="a@example.org", template="t")
    OutgoingEmail.objects.create(to="b@example.org", template="t", attempts=2,
                                 last_attempt_at=timezone.now(),
                                 last_outcome=Outcome.UNREACHABLE, last_error="secret host")
    status, body = ready(client)
    assert status == 200
    assert body["checks"]["mail"]["state"] == "failing"
    assert ("mail: 2 waiting, 1 failing (last: Mail server unreachable)" in body["problems"])
    assert "secret host" not in json.dumps(body)


def test_plain_errors_drop_the_drivers_preamble() -> None:
    refused = Exception('connection failed: connection to server at "127.0.0.1", port 9 '
                        "failed: Connection refused\n\tIs the server running on that host?")
    assert checks.plain_error(refused) == "connection refused"
    missing = Exception('connection to server at "h", port 5432 failed: FATAL:  database '
                        '"x" does not exist')
    assert checks.plain_error(missing) == 'database "x" does not exist'
    assert checks.plain_error(PermissionError(13, "Permission denied")) == "permission denied"


def test_health_is_answered_over_plain_http_behind_an_https_site(
    client: Client, settings: Any, files_dir: Path
) -> None:
    """A balancer probes the host over HTTP: no redirect to HTTPS for the probes, but
    /metrics (whose token would travel in the clear) keeps it."""
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/health/live").status_code == 200
    assert client.get("/health/ready").status_code == 200
    assert client.get("/metrics").status_code == 301
