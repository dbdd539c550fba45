"""What changed on an account around a recovery request, and undoing it (DESIGN §5).

Staff see every change of the account's addresses, factors, tokens, roles and password from
TAKEOVER_WINDOW before the request until now, read from its security events, and choose which
to reverse as part of completing the recovery. Factors, tokens, sessions and the password are
taken back by every completion anyway; what a choice adds is putting back the owner's removed
addresses and roles and taking away what a hijacker added.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from relatch.accounts.emails.staff import remove_address_for_staff, restore_address_for_staff
from relatch.accounts.models import User
from relatch.audit.models import ACCOUNT_CHANGE_KINDS, EventKind, SecurityEvent, kind_label
from relatch.index.manage.staff import restore_role, set_role_back, withdraw_invitation
from relatch.recovery.models import RecoveryRequest

TAKEOVER_WINDOW = timedelta(days=30)
TAKEN_BACK_ANYWAY = "Taken back by the completion whatever you choose."
# Defined beside the partial index that serves recent_changes (audit's event_user_changes):
# one list, so the query's kinds can never drift from the index's condition.
SHOWN_KINDS = ACCOUNT_CHANGE_KINDS


@dataclass(frozen=True)
class Change:
    """One change of the account, as the desk lists it."""

    event_id: int
    when: datetime
    label: str
    what: str
    # What reversing it does ("" when it cannot be reversed here).
    undo: str
    note: str = ""

    @property
    def id(self) -> int:
        """What the desk's completion (its form, the API's ``reverse``) names it by."""
        return self.event_id


def recent_changes(recovery: RecoveryRequest) -> list[Change]:
    """The account's changes since TAKEOVER_WINDOW before the request, newest first."""
    user = recovery.user
    if user is None:
        return []
    events = SecurityEvent.objects.filter(
        user=user, kind__in=SHOWN_KINDS, created_at__gte=recovery.created_at - TAKEOVER_WINDOW,
    ).order_by("-created_at", "-id")[:200]
    return [_change(event, user) for event in events if not _by_staff(event)]


def _by_staff(event: SecurityEvent) -> bool:
    return bool((event.details or {}).get("by_staff")) or str(
        (event.details or {}).get("changed_by", "")).startswith("staff: ")


def _change(event: SecurityEvent, user: User) -> Change:
    d: dict[str, Any] = event.details or {}
    what, undo, note = _describe(event.kind, d, user)
    return Change(event.pk, event.created_at, kind_label(event.kind), what, undo, note)


def _describe(kind: str, d: dict[str, Any], user: User) -> tuple[str, str, str]:
    name = user.username
    if kind == EventKind.EMAIL_ADDED:
        return d.get("address", ""), f"Remove {d.get('address', '')}", ""
    if kind == EventKind.EMAIL_REMOVED:
        return d.get("address", ""), f"Put {d.get('address', '')} back, unverified", ""
    if kind == EventKind.EMAIL_REPLACED:
        return f"{d.get('old', '')} → {d.get('new', '')}", f"Put {d.get('old', '')} back", ""
    if kind == EventKind.ROLE_INVITATION_SENT and d.get("inviter") == name:
        return (f"{d.get('invitee')} invited as {d.get('role')} of {d.get('project')}",
                f"Withdraw it (revoke, or remove the role it gave {d.get('invitee')})", "")
    if kind == EventKind.ROLE_CHANGED and d.get("changed_by") == name:
        return (f"{d.get('member')} of {d.get('project')}: {d.get('old_role')} → "
                f"{d.get('new_role')}", f"Make {d.get('member')} {d.get('old_role')} again", "")
    if kind == EventKind.ROLE_REMOVED and d.get("removed_by") == name:
        return (f"{d.get('member')} removed from {d.get('project')} ({d.get('role')})",
                f"Give {d.get('member')} the {d.get('role')} role back", "")
    return _summary(d), "", TAKEN_BACK_ANYWAY if kind in _TAKEN_BACK else ""


_TAKEN_BACK = (EventKind.TOTP_ADDED, EventKind.WEBAUTHN_ADDED, EventKind.RECOVERY_CODES_GENERATED,
               EventKind.API_TOKEN_CREATED, EventKind.PASSWORD_CHANGED, EventKind.PASSWORD_RESET)


def _summary(d: dict[str, Any]) -> str:
    keep = ("address", "old", "new", "label", "name", "project", "member", "changed_by",
            "removed_by")
    return ", ".join(f"{key}: {d[key]}" for key in keep if d.get(key))


def reverse_changes(*, recovery: RecoveryRequest, event_ids: list[int], staff: User) -> list[str]:
    """Undo the chosen changes (ids from ``recent_changes``); what was undone, in words. A
    change that is no longer there to undo is skipped. Call inside the completion."""
    user = recovery.user
    assert user is not None
    allowed = {c.event_id: c for c in recent_changes(recovery) if c.undo}
    done = []
    for event_id in dict.fromkeys(event_ids):
        change = allowed.get(event_id)
        event = SecurityEvent.objects.get(pk=event_id) if change else None
        if change and event and _undo(event, user, staff, recovery.contact_email):
            done.append(change.undo)
    return done


def _undo(event: SecurityEvent, user: User, staff: User, contact: str) -> bool:
    action = _UNDO.get(EventKind(event.kind))
    return bool(action and action(event.details or {}, user, staff, contact))


def _undo_added(d: dict[str, Any], user: User, staff: User, contact: str) -> bool:
    address = str(d.get("address", ""))
    return address.lower() != contact.lower() and remove_address_for_staff(
        user=user, address=address, staff=staff)


def _undo_removed(d: dict[str, Any], user: User, staff: User, contact: str) -> bool:
    return restore_address_for_staff(user=user, address=str(d.get("address", "")), staff=staff)


def _undo_replaced(d: dict[str, Any], user: User, staff: User, contact: str) -> bool:
    _undo_added({"address": d.get("new", "")}, user, staff, contact)
    return _undo_removed({"address": d.get("old", "")}, user, staff, contact)


def _undo_invitation(d: dict[str, Any], user: User, staff: User, contact: str) -> bool:
    return withdraw_invitation(project_name=str(d.get("project")), inviter=user,
                               username=str(d.get("invitee")), staff=staff)


def _undo_role_change(d: dict[str, Any], user: User, staff: User, contact: str) -> bool:
    return set_role_back(project_name=str(d.get("project")), username=str(d.get("member")),
                         from_kind=str(d.get("new_role")), to_kind=str(d.get("old_role")),
                         staff=staff)


def _undo_removal(d: dict[str, Any], user: User, staff: User, contact: str) -> bool:
    return restore_role(project_name=str(d.get("project")), username=str(d.get("member")),
                        kind=str(d.get("role")), staff=staff)


_UNDO: dict[EventKind, Callable[[dict[str, Any], User, User, str], bool]] = {
    EventKind.EMAIL_ADDED: _undo_added,
    EventKind.EMAIL_REMOVED: _undo_removed,
    EventKind.EMAIL_REPLACED: _undo_replaced,
    EventKind.ROLE_INVITATION_SENT: _undo_invitation,
    EventKind.ROLE_CHANGED: _undo_role_change,
    EventKind.ROLE_REMOVED: _undo_removal,
}
