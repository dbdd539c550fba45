"""Template context: whether pages offer sign-up (RELATCH_SIGNUP)."""

from typing import Any

from django.http import HttpRequest

from relatch.accounts.registration import policy


def signup(request: HttpRequest) -> dict[str, Any]:
    """``signup_closed``: True when only operators make accounts, so no page links to a form
    that does not exist. (Closed, not open: a page rendered without this processor keeps the
    link, as before.)"""
    return {"signup_closed": not policy.signup_open()}
