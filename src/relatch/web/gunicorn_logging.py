"""gunicorn's access log, with token paths redacted (secrets never in logged URLs)."""

from typing import Any

from gunicorn.glogging import Logger

from relatch.web.logging import redact


class RedactingLogger(Logger):
    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, str]:
        atoms: dict[str, str] = super().atoms(resp, req, environ, request_time)
        for key in ("r", "U", "f"):
            if key in atoms:
                atoms[key] = redact(atoms[key])
        return atoms
