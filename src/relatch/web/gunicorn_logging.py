"""gunicorn's access log, with token paths redacted (secrets never in logged URLs)."""

import traceback
from typing import Any

from gunicorn.config import AccessLogFormat
from gunicorn.glogging import Logger

from relatch.web.logging import redact


class RedactingLogger(Logger):
    """gunicorn's logger; writes the default (combined) line itself, without the full atoms.

    gunicorn's ``atoms()`` copies every request header, response header and WSGI environ
    entry into a dict and escapes each, for every request, so that any format can be
    served: about a seventh of a worker's busy time on installer requests. The default
    format needs nine of them; any other format goes through gunicorn's own path.
    """

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        if not self.access_log_enabled:
            return
        if self.cfg.access_log_format != AccessLogFormat.default:
            super().access(resp, req, environ, request_time)
            return
        try:
            self.access_log.info("%s", self.combined_line(resp, environ))
        except Exception:  # noqa: BLE001 - a log line must never fail a request, as in gunicorn
            self.error(traceback.format_exc())

    def combined_line(self, resp: Any, environ: Any) -> str:
        """The line gunicorn's default format gives, with token paths redacted."""
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        sent = getattr(resp, "sent", None)
        request = redact(
            f"{environ['REQUEST_METHOD']} {environ['RAW_URI']} {environ['SERVER_PROTOCOL']}"
        )
        return (
            f"{environ.get('REMOTE_ADDR', '-')} - {_quoted(self._get_user(environ) or '-')} "
            f'{self.now()} "{_quoted(request)}" {status} {sent is not None and str(sent) or "-"} '
            f'"{_quoted(redact(environ.get("HTTP_REFERER", "-")))}" '
            f'"{_quoted(environ.get("HTTP_USER_AGENT", "-"))}"'
        )

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, str]:
        atoms: dict[str, str] = super().atoms(resp, req, environ, request_time)
        for key in ("r", "U", "f"):
            if key in atoms:
                atoms[key] = redact(atoms[key])
        return atoms


def _quoted(value: str) -> str:
    # As gunicorn's SafeAtoms: a quote in a header cannot end the field early and
    # forge the rest of the line for a log reader.
    return value.replace('"', '\\"')
