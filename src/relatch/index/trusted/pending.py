"""Pending publishers: the first exchange creates the project, and drops the other pending
publishers for the same name (their owners are told by mail).

A pending publisher reserves nothing: until its first exchange anyone may create a project of
that name (by upload, or another pending publisher's first exchange). When the name is gone,
the pending publisher is dropped and its exchange refused, never pointed at a project its owner
does not own.
"""

from django.db import transaction
from django.http import HttpRequest

from relatch.index.models import Project
from relatch.index.trusted.models import TrustedPublisher
from relatch.index.trusted.name_taken import drop_publisher as _drop
from relatch.index.upstream.reserve import ReserveRefusedError, create_local_project

TAKEN_BY_OTHER = ("Another pending publisher's first upload created the project {name}, so "
                  "yours can no longer create it.")
TAKEN_BEFORE = ("A project named {name} was created here before your pending publisher's first "
                "upload, so it can no longer create it.")


class NameTakenError(Exception):
    """The pending publisher's name is a project already (or not a valid name): the exchange
    rolls back, then ``drop_pending`` drops the publisher in a transaction of its own."""

    def __init__(self, *, publisher_id: int, name: str) -> None:
        self.publisher_id = publisher_id
        self.reason = TAKEN_BEFORE.format(name=name)
        self.message = (f"The project name '{name}' of this pending trusted publisher was "
                        "taken before its first upload: the pending publisher was dropped and "
                        "its owner told. A project owner can add a publisher to the project.")
        super().__init__(self.message)


def create_pending_project(*, request: HttpRequest | None, publisher: TrustedPublisher) -> Project:
    """Inside the exchange's transaction, with ``publisher`` locked: create its project (owned
    by the account that added it, as reserving a name does), make it an ordinary publisher of
    that project, and drop the other pending publishers for the name. Raises NameTakenError."""
    name = publisher.pending_name
    try:
        project = create_local_project(name=name, owner=publisher.added_by)
    except ReserveRefusedError:
        raise NameTakenError(publisher_id=publisher.pk, name=name) from None
    others = list(
        TrustedPublisher.objects.select_for_update()
        .filter(project__isnull=True, removed_at__isnull=True,
                pending_normalized_name=publisher.pending_normalized_name)
        .exclude(pk=publisher.pk)
    )
    publisher.project = project
    publisher.pending_name = publisher.pending_normalized_name = ""
    publisher.save(update_fields=["project", "pending_name", "pending_normalized_name"])
    for other in others:
        _drop(request=request, publisher=other, reason=TAKEN_BY_OTHER.format(name=project.name))
    return project


@transaction.atomic
def drop_pending(*, request: HttpRequest | None, publisher_id: int, reason: str) -> bool:
    """Drop the pending publisher ``publisher_id`` if it is still pending and active, with
    PENDING_PUBLISHER_INVALIDATED and a mail to its owner; whether it was dropped."""
    publisher = (TrustedPublisher.objects.select_for_update()
                 .filter(pk=publisher_id, project__isnull=True, removed_at__isnull=True).first())
    if publisher is None:
        return False
    _drop(request=request, publisher=publisher, reason=reason)
    return True
