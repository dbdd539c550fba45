"""How a browser signed in (password only, app code, security key, ...), for the devices page.

The sign-in writes the label on the session's row and the device's row as it makes them
(``relatch.signin.services.complete_signin``), so the page reads it back and never guesses
which event belonged to which row.
"""

from collections.abc import Mapping
from typing import Any

from relatch.audit.models import Factor

NOT_RECORDED = "Not recorded"

_SECOND_STEP = {
    Factor.TOTP: "Password and app code",
    Factor.WEBAUTHN: "Password and security key",
    Factor.RECOVERY_CODE: "Password and recovery code",
    Factor.PASSWORD: "Password only",
    Factor.EMAIL_LINK: "Emailed link",
}


def method_label(factor: str, details: Mapping[str, Any]) -> str:
    """How people read a sign-in's factor and details: "Password and app code"."""
    if details.get("confirmed_by") == "self_recovery":
        return "Account recovery"
    if factor == Factor.WEBAUTHN and details.get("passkey"):
        return "Passkey"
    label = _SECOND_STEP.get(Factor(factor)) if factor in Factor.values else None
    if label is None:
        return NOT_RECORDED
    if details.get("confirmed_by") == "email_link":
        return f"{label}, confirmed by email"
    return label
