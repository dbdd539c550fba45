"""The replay lock: each OIDC token (issuer, jti) is exchanged at most once.

The insert of a ``UsedOIDCToken`` row IS the check: the unique constraint lets exactly one of
any number of concurrent exchanges of the same token commit, with no gap between looking and
recording (PyPI's audit, TOB-PYPI26-2). The row outlives every moment at which the token could
still pass verification: its ``exp`` plus the leeway the check allows, plus a margin
(TOB-PYPI26-1: a lock that expired before the leeway closed allowed a second exchange).
"""

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from relatch.index.trusted.errors import invalid_token
from relatch.index.trusted.models import UsedOIDCToken
from relatch.index.trusted.verify import LEEWAY, VerifiedToken

# Beyond exp + LEEWAY: room for a clock that moves, and for the daily cleanup's timing.
KEEP_MARGIN = timedelta(minutes=10)
PRUNE_BATCH = 5000
ALREADY_USED = ("This token was already exchanged (its 'jti' was used before): each CI token "
                "is exchanged once. Request a new token from the CI provider.")


def keep_until(token: VerifiedToken) -> datetime:
    """How long the token's jti stays recorded."""
    return token.expires_at + timedelta(seconds=LEEWAY) + KEEP_MARGIN


def record_use(token: VerifiedToken) -> None:
    """Record ``token``'s jti inside the caller's transaction, or refuse it as a replay.

    Call first in the exchange's transaction: a concurrent exchange of the same token waits
    here on the unique index until this one commits or rolls back, then fails or proceeds.
    """
    try:
        with transaction.atomic():
            UsedOIDCToken.objects.create(issuer=token.issuer, jti=token.jti,
                                         keep_until=keep_until(token))
    except IntegrityError:
        raise invalid_token(ALREADY_USED) from None


def prune_used_tokens(*, now: datetime | None = None) -> int:
    """Delete the records whose keep_until has passed (the tokens can no longer verify);
    how many. Run daily (``relatch.index.upload.tasks``)."""
    now = now or timezone.now()
    pruned = 0
    while True:
        ids = list(UsedOIDCToken.objects.filter(keep_until__lt=now)
                   .values_list("pk", flat=True)[:PRUNE_BATCH])
        if not ids:
            return pruned
        pruned += UsedOIDCToken.objects.filter(pk__in=ids).delete()[0]
