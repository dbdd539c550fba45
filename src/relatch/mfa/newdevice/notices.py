"""What the owner is told about sign-ins that got past the password.

OWASP MFA4 / ASVS 6.3.5: a correct password followed by a failed second factor means someone
may have the password. The owner hears about it at every verified address, with when and from
what browser, but at most once per ``NOTICE_INTERVAL`` per account, so a password holder cannot
flood the mailboxes.
"""

from datetime import timedelta

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from relatch.accounts.models import User
from relatch.accounts.notices import announce_to_account
from relatch.accounts.sessions.useragents import describe_user_agent
from relatch.audit.models import EventKind, Factor, SecurityEvent
from relatch.audit.services import record_event
from relatch.web.client import client_ip, client_user_agent

NOTICE_INTERVAL = timedelta(minutes=15)


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


@transaction.atomic
def note_second_factor_failure(
    *, request: HttpRequest, user: User, factor: str, during: str = "signin"
) -> bool:
    """Write SECOND_FACTOR_FAILED for the first failed factor after a correct password (of a
    partial sign-in, or of a re-authentication: ``during="reauth"``) and mail the owner unless
    they were mailed within NOTICE_INTERVAL. Returns whether mail was sent."""
    since = timezone.now() - NOTICE_INTERVAL
    recently = SecurityEvent.objects.filter(
        user=user,
        kind=EventKind.SECOND_FACTOR_FAILED,
        created_at__gte=since,
        details__notified=True,
    ).exists()
    record_event(
        user=user,
        kind=EventKind.SECOND_FACTOR_FAILED,
        request=request,
        factor=factor,
        # A sign-in's events keep their first shape; a re-authentication's say so.
        details={"notified": not recently, **({"during": during} if during != "signin" else {})},
    )
    if recently:
        return False
    announce_to_account(
        user=user,
        template="signin_factor_failed",
        context={
            **client_facts(request),
            "factor_label": factor_label(factor),
            "during_reauth": during == "reauth",
        },
    )
    return True
