"""Disabling API tokens nobody uses (issue 21): a token forgotten in an old CI secret or a
laptop backup is the one found by someone else years later.

Once a day (``relatch.index.tokens.tasks``; ``relatch disable_unused_tokens`` by hand) every
live token the account made itself (not one a trusted publisher minted, which lives 15
minutes anyway) whose last use, or creation if it was never used, is older than
TOKEN_UNUSED_DAYS is revoked with ``revoked_because=unused``, an API_TOKEN_DISABLED_UNUSED
event, and a mail to every verified address. Tokens made before tokens expired by default
(no expiry) are caught by this rule too.

Batched by id (keyset), one transaction a batch. Each token is disabled by a conditional
UPDATE that repeats the rule, so a token used between the batch's read and its update (an
upload in flight) is left working, and a second run disables nothing twice.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from relatch.accounts.notices import announce_to_account
from relatch.audit.models import EventKind
from relatch.audit.services import record_event
from relatch.index.models import APIToken
from relatch.index.tokens.services import event_details, in_utc, mail_context

BATCH_SIZE = 200


@dataclass(frozen=True)
class UnusedPass:
    """What one pass did: whether the rule is on, tokens looked at, tokens disabled."""

    enabled: bool
    checked: int = 0
    disabled: int = 0


def _unused_since(cutoff: datetime, now: datetime) -> Q:
    # Live (not revoked, not expired), made by the account, and idle since before cutoff.
    return (
        Q(revoked_at__isnull=True, publisher__isnull=True)
        & (Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        & (Q(last_used_at__lt=cutoff) | Q(last_used_at__isnull=True, created_at__lt=cutoff))
    )


def unused_tokens(*, cutoff: datetime, now: datetime) -> QuerySet[APIToken]:
    """The tokens the rule would disable now, given its ``cutoff``."""
    return APIToken.objects.filter(_unused_since(cutoff, now))


def disable_unused_tokens(
    *, now: datetime | None = None, batch_size: int = BATCH_SIZE
) -> UnusedPass:
    """One pass of the rule; nothing when TOKEN_UNUSED_DAYS is 0. Safe to run any number of
    times and at once with uploads."""
    days = settings.TOKEN_UNUSED_DAYS
    if days <= 0:
        return UnusedPass(enabled=False)
    now = now or timezone.now()
    cutoff = now - timedelta(days=days)
    checked = disabled = 0
    after = 0
    while True:
        ids = list(unused_tokens(cutoff=cutoff, now=now).filter(pk__gt=after)
                   .order_by("pk").values_list("pk", flat=True)[:batch_size])
        checked += len(ids)
        if ids:
            disabled += _disable_batch(ids, cutoff=cutoff, now=now)
            after = ids[-1]
        if len(ids) < batch_size:
            return UnusedPass(enabled=True, checked=checked, disabled=disabled)


@transaction.atomic
def _disable_batch(ids: list[int], *, cutoff: datetime, now: datetime) -> int:
    disabled = 0
    rows = APIToken.objects.select_related("user", "project").filter(pk__in=ids).order_by("pk")
    for token in rows:
        # The rule again, in the UPDATE itself: a use recorded since the read above wins.
        if not APIToken.objects.filter(_unused_since(cutoff, now), pk=token.pk).update(
            revoked_at=now, revoked_because=APIToken.RevokedBecause.UNUSED
        ):
            continue
        token.revoked_at, token.revoked_because = now, APIToken.RevokedBecause.UNUSED
        _tell(token, now=now)
        disabled += 1
    return disabled


def _tell(token: APIToken, *, now: datetime) -> None:
    since = token.last_used_at or token.created_at
    record_event(
        user=token.user, kind=EventKind.API_TOKEN_DISABLED_UNUSED, request=None,
        details={**event_details(token), "unused_since": since.isoformat(),
                 "never_used": token.last_used_at is None},
    )
    context = {
        **mail_context(None, token),
        "when": in_utc(now),
        "unused_since": in_utc(since),
        "never_used": token.last_used_at is None,
        "unused_days": settings.TOKEN_UNUSED_DAYS,
    }
    announce_to_account(user=token.user, template="token_disabled_unused", context=context)
