"""Changing a password that the user knows (ASVS 6.2.2, 6.2.3)."""

from django.contrib.auth import update_session_auth_hash
from django.db import transaction
from django.http import HttpRequest

from relatch.accounts.models import User
from relatch.accounts.notices import announce_to_account
from relatch.accounts.sessions.services import (
    current_digest,
    delete_other_sessions,
    session_row_follows_key,
)
from relatch.audit.models import EventKind
from relatch.audit.services import record_event


@transaction.atomic
def change_password(*, request: HttpRequest, user: User, new_password: str) -> int:
    """Set the new password, keep this session (with a new key), end every other one, record
    and announce it to every verified address. The caller has checked the current password.

    Returns how many other sessions were ended (ASVS 7.4.3).
    """
    user.set_password(new_password)
    user.save(update_fields=["password"])
    with session_row_follows_key(request=request, user=user):
        update_session_auth_hash(request, user)
    ended = delete_other_sessions(user=user, keep_digest=current_digest(request))
    record_event(
        user=user,
        kind=EventKind.PASSWORD_CHANGED,
        request=request,
        details={"sessions_ended": ended},
    )
    announce_to_account(user=user, template="password_changed", context={"sessions_ended": ended})
    return ended
