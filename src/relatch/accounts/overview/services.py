"""Changes made from the account page."""

from django.db import transaction
from django.http import HttpRequest

from relatch.accounts.models import User
from relatch.audit.models import EventKind
from relatch.audit.services import record_event

NAME_MAX_LENGTH = User._meta.get_field("name").max_length or 100


@transaction.atomic
def change_name(*, request: HttpRequest, user: User, name: str) -> bool:
    """Set the account's display name (empty allowed); False when it is unchanged.

    The old and new names go into the history, so an unexpected change can be noticed.
    """
    name = name.strip()
    if len(name) > NAME_MAX_LENGTH:
        raise ValueError(f"a name has at most {NAME_MAX_LENGTH} characters")
    if name == user.name:
        return False
    old = user.name
    user.name = name
    user.save(update_fields=["name"])
    record_event(
        user=user, kind=EventKind.NAME_CHANGED, request=request, details={"old": old, "new": name}
    )
    return True
