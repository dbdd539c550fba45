"""Revoking an account's API tokens when a recovery takes the account back (DESIGN §5).

``relatch.recovery.completion`` revokes every token (nothing is uploaded until the owner enrols
a second factor again, which a new token requires); a "this wasn't me" after a completion
(``relatch.recovery.objections``) revokes the ones made since. The caller runs this inside its
own transaction and records the event.
"""

from datetime import datetime

from django.utils import timezone

from relatch.accounts.models import User
from relatch.index.models import APIToken


def revoke_every_token(*, user: User, since: datetime | None = None) -> int:
    """Revoke every live API token of ``user`` (only those created at or after ``since``,
    when given); how many were revoked."""
    live = APIToken.objects.filter(user=user, revoked_at__isnull=True)
    if since is not None:
        live = live.filter(created_at__gte=since)
    return live.update(revoked_at=timezone.now())
