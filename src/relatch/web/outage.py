"""A database outage answered as one: 503 with Retry-After, one log line, no traceback flood.

While the database does not answer (a restart, a failover), every request that needs it failed
with Django's 500 and a full traceback: about 4,000 traceback lines in a ten-second PostgreSQL
restart under load (bench/load.py --faults), which buries the one line an operator needs, and
clients were told the server is broken rather than busy. ``server_error`` (the project's
handler500) answers a database error 503 "briefly unavailable" with Retry-After, from a page
that needs no database (the site layout reads the session); ``DatabaseOutageLogFilter`` turns
the error log of such a request into one warning per ``LOG_EVERY`` per process. Any other
error is the 500 it was, traceback and all.
"""

import logging
import sys
import threading
import time

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseServerError
from django.template import loader

DATABASE_DOWN = (OperationalError, InterfaceError)
RETRY_AFTER_SECONDS = 30
LOG_EVERY = 30.0  # seconds between two outage lines of one process

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Briefly unavailable · Relatch</title></head>
<body><main><h1>Briefly unavailable</h1>
<p>Relatch cannot reach its database for a moment. Nothing was lost; try again in a minute.</p>
</main></body></html>
"""


# SQLite reports a schema that does not match the code as an OperationalError too: that is a
# broken deployment (a migration not applied), not an outage to wait out.
_SCHEMA_ERRORS = ("no such table", "no such column")


def is_database_down(error: BaseException | None) -> bool:
    """Whether ``error`` is the database not answering (refused, dropped, restarting, busy)."""
    if not isinstance(error, DATABASE_DOWN):
        return False
    return not str(error).startswith(_SCHEMA_ERRORS)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: 503 for a database outage, the site's 500 page for anything else."""
    if is_database_down(sys.exc_info()[1]):
        response = HttpResponse(_PAGE, status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    return HttpResponseServerError(loader.get_template("500.html").render())


class DatabaseOutageLogFilter(logging.Filter):
    """On django.request: a request failed by a database outage is logged as one warning per
    LOG_EVERY seconds (without its traceback); every other record passes unchanged."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        # None until the first line: monotonic time starts near 0 at boot, so a 0.0 here hid
        # the first outage of a machine up for less than LOG_EVERY.
        self._last: float | None = None
        self._hidden = 0

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if not is_database_down(error):
            return True
        with self._lock:
            now = time.monotonic()
            if self._last is not None and now - self._last < LOG_EVERY:
                self._hidden += 1
                return False
            hidden, self._hidden, self._last = self._hidden, 0, now
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.msg = ("The database does not answer (%s: %s): requests get 503 (%d more "
                      "since the last such line)")
        record.args = (type(error).__name__, str(error).strip()[:200], hidden)
        record.exc_info, record.exc_text = None, None
        return True
