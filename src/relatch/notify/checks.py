"""System checks of the mail set-up (``relatch check``, and every ``migrate`` and start)."""

import os
from typing import Any

from django.core import checks


def removed_attempts_setting(**kwargs: Any) -> list[checks.CheckMessage]:
    """RELATCH_EMAIL_MAX_ATTEMPTS is no longer read: say so, rather than ignore it silently."""
    if not os.environ.get("RELATCH_EMAIL_MAX_ATTEMPTS", "").strip():
        return []
    return [checks.Warning(
        "RELATCH_EMAIL_MAX_ATTEMPTS is no longer used.",
        hint="Mail is retried until it has failed for RELATCH_EMAIL_GIVE_UP_HOURS (default "
        "72); remove RELATCH_EMAIL_MAX_ATTEMPTS from the environment.",
        id="relatch.notify.W001",
    )]
