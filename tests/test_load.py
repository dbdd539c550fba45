"""The short form of the mixed load (bench/load.py, issue 7 §2): 45 seconds of installs,
sign-ins, uploads and recovery requests against a real ``relatch serve``, on SQLite, or on
PostgreSQL with Redis when the suite runs on PostgreSQL. No server error, no unexpected
status, every accepted upload served with its digest, every stored file with its row and
every queued mail delivered. The full form is ``bench/load.py`` (600 s, by hand)."""

import os
import uuid

import pytest
from bench.load import Options, run

pytestmark = pytest.mark.slow


def options() -> Options:
    url = os.environ.get("RELATCH_DATABASE_URL", "")
    if not url.startswith("postgres"):
        return Options(duration=45, clients=8, database="sqlite", redis=None)
    return Options(
        duration=45, clients=8, database="postgres", postgres=url.rsplit("/", 1)[0],
        # Never the test run's database: a fresh one of its own, dropped afterwards.
        database_name=f"relatch_load_{os.getpid()}_{uuid.uuid4().hex[:8]}",
        # Its own Redis database (bench/load.py by hand uses 7): flushed before the run.
        redis="redis://127.0.0.1:6379/8",
    )


def test_a_mixed_load_has_no_server_error_and_loses_no_upload() -> None:
    result = run(options())
    kinds = result["kinds"]
    # Each kind of work really ran, so a quiet result is not an empty one.
    assert all(kinds[kind]["ops"] > 0 for kind in ("install", "signin", "upload", "recovery"))
    assert result["uploads"] > 0
    assert result["server_errors"] == 0
    assert result["log_errors"] == 0, "the server logged a traceback"
    assert result["problems"] == []
    assert result["mail_pending"] == 0
