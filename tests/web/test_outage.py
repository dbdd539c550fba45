"""A database outage is a 503 with Retry-After and one log line, not a 500 and a traceback per
request (issue 18; bench/load.py --faults logged ~4,000 traceback lines in a 10 s restart)."""

import logging
import sys

import pytest
from django.db import InterfaceError, OperationalError
from django.test import Client, override_settings

from relatch.web import outage

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.web.outage_urls")]


@pytest.fixture
def client() -> Client:
    return Client(raise_request_exception=False)


@pytest.fixture
def outage_log(monkeypatch: pytest.MonkeyPatch) -> list[logging.LogRecord]:
    """The records django.request hands to its handlers after the settings' outage filter."""
    kept: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            kept.append(record)

    logger = logging.getLogger("django.request")
    handler = Keep()
    logger.addHandler(handler)
    yield kept
    logger.removeHandler(handler)


def test_a_database_outage_is_a_503_with_retry_after_and_no_database(client: Client) -> None:
    response = client.get("/gone/")
    assert response.status_code == 503
    assert response["Retry-After"] == str(outage.RETRY_AFTER_SECONDS)
    assert "cannot reach its database for a moment" in response.content.decode()


def test_any_other_error_is_still_the_500_page(client: Client) -> None:
    response = client.get("/bug/")
    assert response.status_code == 500
    assert "Something went wrong" in response.content.decode()


@override_settings(DEBUG=False)
def test_an_outage_is_one_warning_without_traceback_and_bugs_keep_theirs(
    client: Client, outage_log: list[logging.LogRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outage, "LOG_EVERY", 3600.0)
    # The filter the settings put on django.request, fresh (an earlier test may have logged;
    # a test that configures logging again adds another instance, as dictConfig does).
    installed = [f for f in logging.getLogger("django.request").filters
                 if isinstance(f, outage.DatabaseOutageLogFilter)]
    assert installed
    for instance in installed:
        monkeypatch.setattr(instance, "_last", None)
    for _ in range(5):
        assert client.get("/gone/").status_code == 503
    client.get("/bug/")
    down = [r for r in outage_log if "database does not answer" in r.getMessage()]
    assert len(down) == 1 and down[0].levelno == logging.WARNING and down[0].exc_info is None
    assert "terminating connection" in down[0].getMessage()
    bugs = [r for r in outage_log if r.exc_info and r.exc_info[0] is ZeroDivisionError]
    assert len(bugs) == 1 and bugs[0].levelno == logging.ERROR


@pytest.mark.parametrize(("error", "outage_"), [
    (OperationalError("connection to server at 127.0.0.1 failed: Connection refused"), True),
    (OperationalError("database is locked"), True),
    (InterfaceError("connection already closed"), True),
    # A schema that does not match the code is a deployment to fix, not an outage to wait out.
    (OperationalError("no such table: index_project"), False),
    (ZeroDivisionError(), False),
    (None, False),
])
def test_what_counts_as_the_database_not_answering(error: Exception | None,
                                                   outage_: bool) -> None:
    assert outage.is_database_down(error) is outage_


def test_the_first_outage_after_boot_is_logged(monkeypatch: pytest.MonkeyPatch) -> None:
    """The monotonic clock starts near 0 at boot: a process on a machine up for 5 s still
    logs its first outage (it once took the clock's start for an earlier line), and hides the
    next one within LOG_EVERY."""
    monkeypatch.setattr(outage.time, "monotonic", lambda: 5.0)
    check = outage.DatabaseOutageLogFilter()
    first, second = outage_record(), outage_record()
    assert check.filter(first) is True
    assert first.levelno == logging.WARNING and "database does not answer" in first.getMessage()
    assert check.filter(second) is False


def outage_record() -> logging.LogRecord:
    try:
        raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")
    except OperationalError:
        return logging.LogRecord("django.request", logging.ERROR, __file__, 1, "failed", (),
                                 sys.exc_info())
