"""Dropping pending publishers whose name became a project (shared by the pending
publisher's own first exchange, the upload that creates a project and reserving a name).

Dropped at once, with a mail to their owner: a pending publisher the owner believes is set up
must not be found broken only at its release's first run.
"""

from django.http import HttpRequest
from django.utils import timezone

from relatch.accounts.notices import announce_to_account
from relatch.audit.models import EventKind
from relatch.audit.services import record_event
from relatch.index.models import Project
from relatch.index.tokens.services import in_utc
from relatch.index.trusted.describe import describe_publisher, publisher_data
from relatch.index.trusted.models import TrustedPublisher

TAKEN_BY_UPLOAD = ("A project named {name} was created here (by an upload or a reserved name), "
                   "so your pending publisher can no longer create it.")


def drop_pending_for(*, request: HttpRequest | None, project: Project) -> int:
    """Inside the transaction that created ``project``: drop every active pending publisher
    for its name, each owner told; how many."""
    pending = list(TrustedPublisher.objects.select_for_update().filter(
        project__isnull=True, removed_at__isnull=True,
        pending_normalized_name=project.normalized_name))
    for publisher in pending:
        drop_publisher(request=request, publisher=publisher,
                       reason=TAKEN_BY_UPLOAD.format(name=project.name))
    return len(pending)


def drop_publisher(
    *, request: HttpRequest | None, publisher: TrustedPublisher, reason: str
) -> None:
    """Drop one pending publisher: removed, PENDING_PUBLISHER_INVALIDATED, its owner mailed."""
    now = timezone.now()
    TrustedPublisher.objects.filter(pk=publisher.pk).update(removed_at=now)
    publisher.removed_at = now
    record_event(user=publisher.added_by, kind=EventKind.PENDING_PUBLISHER_INVALIDATED,
                 request=request,
                 details={**publisher_data(publisher), "name": publisher.pending_name,
                          "reason": reason})
    announce_to_account(
        user=publisher.added_by, template="pending_publisher_invalidated",
        context={"publisher": describe_publisher(publisher),
                 "project_name": publisher.pending_name, "reason": reason,
                 "when": in_utc(now)},
    )
