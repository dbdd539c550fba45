"""The "Can't sign in?" page's advice: the shortest safe path from what a person still has.

It looks at nothing but the answers, never at an account, so it cannot reveal whether a
username exists (ASVS 6.3.8, OWASP FP1).
"""

from dataclasses import dataclass

from django.db import models


class StillHas(models.TextChoices):
    PASSWORD = "password", "My password"
    EMAIL = "email", "Access to an email address on the account"
    TOTP = "totp", "My authenticator app"
    SECURITY_KEY = "security_key", "My security key or passkey"
    RECOVERY_CODES = "recovery_codes", "Unused recovery codes"
    API_TOKEN = "api_token", "An API token of the account"
    REPO_PUSH = "repo_push", "Push access to the repository of one of my projects"


SECOND_FACTORS = frozenset({StillHas.TOTP, StillHas.SECURITY_KEY, StillHas.RECOVERY_CODES})


class Route(models.TextChoices):
    SIGN_IN = "sign_in"
    PASSWORD_RESET = "password_reset"  # noqa: S105 (a route name, not a secret)
    REQUEST = "request"


@dataclass(frozen=True)
class Advice:
    route: Route
    url_name: str


def route(still_has: set[str]) -> Advice:
    """Where to go with ``still_has`` (StillHas values)."""
    has_password = StillHas.PASSWORD in still_has
    if has_password and StillHas.EMAIL in still_has:
        return Advice(Route.SIGN_IN, "signin:login")
    if has_password and still_has & SECOND_FACTORS:
        # Signing in works; with the email gone, the second step offers a recovery code or
        # the self-service recovery (a wait, no staff).
        return Advice(Route.SIGN_IN, "signin:login")
    if StillHas.EMAIL in still_has:
        return Advice(Route.PASSWORD_RESET, "passwords:reset")
    return Advice(Route.REQUEST, "requester:new")
