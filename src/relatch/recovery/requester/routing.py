"""The "Can't sign in?" page's advice: the shortest safe path from what a person still has.

It looks at nothing but the answers, never at an account, so it cannot reveal whether a
username exists or what an account has enrolled (ASVS 6.3.8, OWASP FP1). The name the person
typed is only carried on, to fill in the next form.
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
    """Where to go, and which way out of the second step the page names: ``has_factor``
    (sign in with it), ``has_mailbox`` (the new-device mail can be read), ``has_password``
    (a request can also start from the sign-in)."""

    route: Route
    url_name: str
    has_factor: bool = False
    has_mailbox: bool = False
    has_password: bool = False


def route(still_has: set[str]) -> Advice:
    """Where to go with ``still_has`` (StillHas values).

    The password with the mailbox or a factor leads to the sign-in: its second step has a way
    on for each loss ("I can't use any of these" makes a request that already counts the
    password; the mailed link's page offers "I no longer have access to my email"). The
    mailbox alone leads to a reset, and from there into the same sign-in, never back here.
    The password alone leads to the request form (the page also names the sign-in's way).
    """
    has_factor = bool(still_has & SECOND_FACTORS)
    has_mailbox = StillHas.EMAIL in still_has
    if StillHas.PASSWORD in still_has and (has_factor or has_mailbox):
        return Advice(Route.SIGN_IN, "signin:login", has_factor, has_mailbox)
    if has_mailbox:
        return Advice(Route.PASSWORD_RESET, "passwords:reset", has_factor, has_mailbox)
    return Advice(Route.REQUEST, "requester:new", has_factor, has_mailbox,
                  has_password=StillHas.PASSWORD in still_has)
