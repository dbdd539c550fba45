"""PEP 792 project status: owners archive, unarchive and deprecate; staff quarantine.

- **archived**: no new uploads (``upload_refusal``); installs go on.
- **deprecated**: as active, marked on the simple pages for installers to warn about.
- **quarantined** (staff only, for a project suspected of malware or a takeover): hidden
  from installers (not in /simple/; its simple page, JSON and files answer 404) and refuses
  uploads. Its owners and staff still see its web pages, with a banner. Only staff lift it.

Every change bumps the project's generation (its pages' ETags and the response cache's
marker); quarantine and its lifting also change /simple/'s list. Each is a
PROJECT_STATUS_CHANGED event and a mail to every owner; staff changes are also StaffAction
rows with the state before and after.
"""

from django.db import transaction
from django.http import HttpRequest

from relatch.accounts.models import User
from relatch.audit.models import EventKind
from relatch.audit.services import record_event, record_staff_action
from relatch.index.changes import mark_project_changed, mark_project_list_changed
from relatch.index.manage.services import (
    ManageError,
    lock_project,
    owners_of,
    require_not_frozen,
    require_owner,
    tell,
)
from relatch.index.models import Project
from relatch.mfa.policy import has_second_factor

Status = Project.Status
MAX_STATUS_REASON = 500
# What owners may set. Quarantine is the index's decision, never the owners'.
OWNER_STATUSES = (Status.ACTIVE, Status.ARCHIVED, Status.DEPRECATED)


def upload_refusal(project: Project) -> str | None:
    """Why an upload to ``project`` must be refused because of its status (PEP 792: an
    archived or quarantined project MUST NOT take new distributions); None when it may take
    one. Pass the row as read under the upload's lock, so a status set meanwhile counts."""
    if project.status == Status.ARCHIVED:
        return (f"{project.name} is archived: it takes no new uploads. An owner can unarchive "
                "it on the project's management page.")
    if project.status == Status.QUARANTINED:
        return (f"{project.name} is quarantined by the index's staff: it takes no uploads "
                "until they lift the quarantine.")
    return None


def _clean_reason(reason: str) -> str:
    reason = reason.strip()
    if len(reason) > MAX_STATUS_REASON:
        raise ManageError(f"The reason has at most {MAX_STATUS_REASON} characters.")
    return reason


def _apply(*, project: Project, status: str, reason: str) -> dict[str, str]:
    """Write the status and mark the pages changed; the details for events and mail."""
    before = project.status
    project.status, project.status_reason = status, reason
    project.save(update_fields=["status", "status_reason"])
    action = f"set status {status}"
    mark_project_changed(project_id=project.pk, project_name=project.name, action=action)
    if Status.QUARANTINED in (before, status):
        # Last: it locks the index's one row until the commit. /simple/ lists the project
        # again, or no longer.
        mark_project_list_changed(project_name=project.name, action=action)
    return {"project": project.name, "old_status": before, "new_status": status,
            "reason": reason}


def _tell_owners(project: Project, details: dict[str, str], actor: User | None) -> None:
    tell(users=owners_of(project), template="project_status_changed", actor=actor,
         context={**details, "by_staff": actor is None})


@transaction.atomic
def set_status(
    *, request: HttpRequest | None, owner: User, project: Project, status: str, reason: str = ""
) -> Project:
    """An owner archives, deprecates or makes ``project`` active again, with an optional
    reason shown to installers. ManageError when the account is frozen or not an owner
    (403), the project is quarantined (403), or the input is bad (400); nothing changes."""
    require_not_frozen(user=owner, action="Changing a project's status")
    project = lock_project(project)
    require_owner(user=owner, project=project, action="change its status")
    if project.status == Status.QUARANTINED:
        raise ManageError(f"{project.name} is quarantined by the index's staff; only they can "
                          "change its status.", status=403)
    if status not in OWNER_STATUSES:
        raise ManageError("Choose the status: active, archived or deprecated.")
    reason = _clean_reason(reason) if status != Status.ACTIVE else ""
    if (project.status, project.status_reason) == (status, reason):
        raise ManageError(f"{project.name} is already {status}. Nothing was changed.")
    details = _apply(project=project, status=status, reason=reason)
    record_event(user=owner, kind=EventKind.PROJECT_STATUS_CHANGED, request=request,
                 details=details)
    _tell_owners(project, details, owner)
    return project


def is_staff(user: User) -> bool:
    """Staff who may quarantine: an active staff account with a second factor (a stolen
    password alone must not hide a project from every installer)."""
    return bool(user.is_active and user.is_staff and has_second_factor(user))


def _staff_change(*, request: HttpRequest | None, staff: User, project: Project,
                  quarantined: bool, reason: str) -> Project:
    if not is_staff(staff):
        raise ManageError("Only staff with two-step sign-in can quarantine projects.",
                          status=403)
    reason = _clean_reason(reason)
    if not reason:
        raise ManageError("Write the reason: the owners read it, and the staff record keeps it.")
    project = lock_project(project)
    # Checked under the lock: two staff sending the same form change it once.
    if (project.status == Status.QUARANTINED) == quarantined:
        raise ManageError(f"{project.name} is {'already' if quarantined else 'not'} "
                          "quarantined. Nothing was changed.")
    before = {"project": project.name, "status": project.status, "reason": project.status_reason}
    # A lifted quarantine leaves the project active with no reason shown; the staff's reason
    # goes to the owners and the staff record.
    status = Status.QUARANTINED if quarantined else Status.ACTIVE
    details = {**_apply(project=project, status=status, reason=reason if quarantined else ""),
               "reason": reason}
    record_staff_action(staff=staff, subject=None, action=f"project:{status}", reason=reason,
                        before=before, after={"project": project.name, "status": status})
    for owner in owners_of(project):
        record_event(user=owner, kind=EventKind.PROJECT_STATUS_CHANGED, request=request,
                     details={**details, "changed_by": f"staff: {staff.username}"})
    _tell_owners(project, details, None)
    return project


@transaction.atomic
def quarantine(
    *, request: HttpRequest | None, staff: User, project: Project, reason: str
) -> Project:
    """Staff hide ``project`` from installers and stop its uploads, with a written reason
    (shown to its owners). ManageError (403) for anyone but staff with a second factor."""
    return _staff_change(request=request, staff=staff, project=project, quarantined=True,
                         reason=reason)


@transaction.atomic
def lift_quarantine(
    *, request: HttpRequest | None, staff: User, project: Project, reason: str
) -> Project:
    """Staff make a quarantined project active again (installable, taking uploads)."""
    return _staff_change(request=request, staff=staff, project=project, quarantined=False,
                         reason=reason)
