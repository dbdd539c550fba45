"""Words for mails about a factor: when and from what client, and how to name the factor."""

from django.http import HttpRequest
from django.utils import timezone

from relatch.accounts.sessions.useragents import describe_user_agent
from relatch.audit.models import Factor
from relatch.web.client import client_ip, client_user_agent


def client_facts(request: HttpRequest) -> dict[str, str]:
    """When, which browser and system, which IP: JSON-safe words for a mail's context."""
    client = describe_user_agent(client_user_agent(request))
    return {
        "when": timezone.now().strftime("%Y-%m-%d %H:%M UTC"),
        "browser": client.browser,
        "system": client.system,
        "ip_address": client_ip(request) or "unknown",
    }


def factor_label(factor: str) -> str:
    """How a mail's sentence names ``factor``, e.g. "authenticator app code"."""
    labels: dict[str, str] = {
        Factor.TOTP: "authenticator app code",
        Factor.WEBAUTHN: "security key",
        Factor.RECOVERY_CODE: "recovery code",
    }
    return labels.get(factor, "second factor")
