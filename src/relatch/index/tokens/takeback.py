"""Revoking an account's API tokens and trusted publishers when a recovery takes the account
back (DESIGN §5).

``relatch.recovery.completion`` revokes every token and removes every trusted publisher the
account added (nothing is uploaded until the owner enrols a second factor again, which a new
token or publisher requires); a "this wasn't me" after a completion
(``relatch.recovery.objections``) revokes and removes the ones made since. A publisher is
removed as well as its tokens: it acts with the standing of the account that added it, so a
hijacker's publisher would otherwise start publishing again once the owner re-enrols a factor.
The caller runs this inside its own transaction and records the event.
"""

from datetime import datetime

from django.utils import timezone

from relatch.accounts.models import User
from relatch.index.models import APIToken, TrustedPublisher


def revoke_every_token(*, user: User, since: datetime | None = None) -> int:
    """Revoke every live API token of ``user`` (only those created at or after ``since``,
    when given); how many were revoked. Minted tokens count among them."""
    live = APIToken.objects.filter(user=user, revoked_at__isnull=True)
    if since is not None:
        live = live.filter(created_at__gte=since)
    return live.update(revoked_at=timezone.now(),
                       revoked_because=APIToken.RevokedBecause.TAKEN_BACK)


def remove_every_publisher(*, user: User, since: datetime | None = None) -> int:
    """Remove every active trusted publisher ``user`` added, pending ones included (only those
    added at or after ``since``, when given), and revoke their live tokens; how many."""
    active = TrustedPublisher.objects.filter(added_by=user, removed_at__isnull=True)
    if since is not None:
        active = active.filter(created_at__gte=since)
    now = timezone.now()
    APIToken.objects.filter(publisher__in=active, revoked_at__isnull=True).update(
        revoked_at=now, revoked_because=APIToken.RevokedBecause.TAKEN_BACK)
    return active.update(removed_at=now)
