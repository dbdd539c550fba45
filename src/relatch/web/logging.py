"""Keeps secrets out of logs."""

import logging
import re

# Path segments after these prefixes are tokens (verification, reset, new-device,
# self-recovery-cancel, recovery status, "not me" and proof links); a log line,
# Django's or gunicorn's, shows them as [redacted] so a log reader cannot use the link.
_SECRET_PATH = re.compile(
    r"(/(?:account/(?:emails/verify|reset|login/confirm|recovery/cancel)"
    r"|recovery/(?:request/status|request/not-me|proof))/)[^\s\"?]+"
)


def redact(text: str) -> str:
    return _SECRET_PATH.sub(r"\1[redacted]/", text)


class RedactSecretsFilter(logging.Filter):
    """Rewrites a record's message with token paths redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
