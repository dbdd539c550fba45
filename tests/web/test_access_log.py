"""The access log line Relatch writes itself is gunicorn's default line, redacted.

RedactingLogger skips gunicorn's every-header atoms for the default format (a seventh of
an installer request's cost); these tests hold its line to what gunicorn's own formatting
gives for the same request, so operators' log parsers see no difference. A running
server's log is checked in tests/test_cli.py."""

import base64
import logging
from datetime import timedelta
from types import SimpleNamespace

import pytest
from gunicorn.config import AccessLogFormat, Config
from gunicorn.glogging import SafeAtoms

from relatch.web.gunicorn_logging import RedactingLogger

TOKEN = "MQ:1uRz7x:Qk3bQ2m4v0sSecretSecret"
NOW = "[21/Nov/2026:13:30:00 +0000]"


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def logger(monkeypatch):
    cfg = Config()
    cfg.set("accesslog", "-")
    log = RedactingLogger(cfg)
    monkeypatch.setattr(log, "now", lambda: NOW)  # one fixed clock for both lines compared
    captured = Captured()
    log.access_log.addHandler(captured)
    log.captured = captured
    yield log
    log.access_log.removeHandler(captured)


def request(uri="/simple/pkg/", method="GET", sent=1234, status="200 OK", **headers):
    environ = {
        "REQUEST_METHOD": method,
        "RAW_URI": uri,
        "PATH_INFO": uri.split("?")[0],
        "QUERY_STRING": uri.partition("?")[2],
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
    }
    environ.update({f"HTTP_{k.upper()}": v for k, v in headers.items()})
    req = SimpleNamespace(headers=[(k.upper().replace("_", "-"), v) for k, v in headers.items()])
    resp = SimpleNamespace(status=status, sent=sent, headers=[("Content-Type", "text/html")])
    return resp, req, environ


BASIC = "Basic " + base64.b64encode(b"__token__:pypi-secret").decode()

REQUESTS = [
    request(),
    request(uri="/simple/?format=json", user_agent='pip/25.3 {"ci":null}'),
    request(uri=f"/account/reset/{TOKEN}/?next=/x", referer=f"https://x/account/reset/{TOKEN}/"),
    request(uri="/legacy/", method="POST", authorization=BASIC, sent=None, status="400 Bad"),
    request(user_agent='"; forged="yes', referer='a"b'),
    request(sent=0, status=304),
]


@pytest.mark.parametrize(("resp", "req", "environ"), REQUESTS)
def test_the_line_is_gunicorns_default_line_with_tokens_redacted(logger, resp, req, environ):
    gunicorns = AccessLogFormat.default % SafeAtoms(
        logger.atoms(resp, req, environ, timedelta(milliseconds=3))
    )
    logger.access(resp, req, environ, timedelta(milliseconds=3))
    assert logger.captured.lines == [gunicorns]
    assert TOKEN not in gunicorns and "pypi-secret" not in gunicorns


def test_a_quote_in_a_header_cannot_forge_a_field(logger):
    resp, req, environ = request(user_agent='"; forged="yes')
    logger.access(resp, req, environ, timedelta(milliseconds=3))
    assert logger.captured.lines[0].endswith('"\\"; forged=\\"yes"')


def test_another_format_goes_through_gunicorns_atoms_still_redacted(logger):
    logger.cfg.set("access_log_format", "%(U)s %({user-agent}i)s %(M)s")
    resp, req, environ = request(uri=f"/account/reset/{TOKEN}/", user_agent="uv/0.9")
    logger.access(resp, req, environ, timedelta(milliseconds=3))
    assert logger.captured.lines == ["/account/reset/[redacted]/ uv/0.9 3"]


def test_no_access_log_configured_writes_nothing():
    log = RedactingLogger(Config())
    captured = Captured()
    log.access_log.addHandler(captured)
    try:
        log.access(*request(), timedelta(milliseconds=3))
    finally:
        log.access_log.removeHandler(captured)
    assert captured.lines == []


def test_the_default_format_never_builds_gunicorns_atoms(logger, monkeypatch):
    """The saving itself: the default line must not go through atoms() (every header)."""

    def every_header(*args):
        raise AssertionError("atoms() built for the default format")

    monkeypatch.setattr(logger, "atoms", every_header)
    resp, req, environ = request()
    logger.access(resp, req, environ, timedelta(milliseconds=3))
    line = f'127.0.0.1 - - {NOW} "GET /simple/pkg/ HTTP/1.1" 200 1234 "-" "-"'
    assert logger.captured.lines == [line]
