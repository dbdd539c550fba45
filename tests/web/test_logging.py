"""Secrets never appear in logs (DESIGN §7): token paths are redacted.

gunicorn's access log is checked against a running server in tests/test_cli.py."""

import logging

import pytest

from relatch.web.logging import RedactSecretsFilter, redact

TOKEN = "MQ:1uRz7x:Qk3bQ2m4v0sSecretSecret"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (f"GET /account/emails/verify/{TOKEN}/ HTTP/1.1",
         "GET /account/emails/verify/[redacted]/ HTTP/1.1"),
        (f'"GET /account/reset/{TOKEN}/?next=/x HTTP/1.1"',
         '"GET /account/reset/[redacted]/?next=/x HTTP/1.1"'),
        ("GET /account/reset/ HTTP/1.1", "GET /account/reset/ HTTP/1.1"),
        ("GET /account/sessions/ HTTP/1.1", "GET /account/sessions/ HTTP/1.1"),
        (f"GET /account/login/confirm/{TOKEN}/ HTTP/1.1",
         "GET /account/login/confirm/[redacted]/ HTTP/1.1"),
        (f"GET /account/recovery/cancel/{TOKEN}/ HTTP/1.1",
         "GET /account/recovery/cancel/[redacted]/ HTTP/1.1"),
        (f"GET /recovery/request/status/abc123/{TOKEN}/ HTTP/1.1",
         "GET /recovery/request/status/[redacted]/ HTTP/1.1"),
        (f"POST /recovery/request/not-me/abc123/{TOKEN}/ HTTP/1.1",
         "POST /recovery/request/not-me/[redacted]/ HTTP/1.1"),
        (f"GET /recovery/proof/7/abc123/{TOKEN}/ HTTP/1.1",
         "GET /recovery/proof/[redacted]/ HTTP/1.1"),
        ("GET /recovery/request/ HTTP/1.1", "GET /recovery/request/ HTTP/1.1"),
    ],
)
def test_token_paths_are_redacted(line, expected):
    assert redact(line) == expected


def test_the_log_filter_rewrites_django_request_lines():
    record = logging.LogRecord("django.request", logging.WARNING, __file__, 1,
                               "Not Found: %s", (f"/account/reset/{TOKEN}/",), None)
    assert RedactSecretsFilter().filter(record)
    assert record.getMessage() == "Not Found: /account/reset/[redacted]/"
    assert TOKEN not in record.getMessage()
