"""What the owner is told about a sign-in or re-authentication that got past the password.

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
from relatch.audit.models import EventKind, SecurityEvent
from relatch.audit.services import record_event
from relatch.mfa.notices import client_facts, factor_label

NOTICE_INTERVAL = timedelta(minutes=15)


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
