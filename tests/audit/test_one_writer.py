"""Staff actions have one writer (issue 16 §4): ``audit.services.record_staff_action``.

The desk, the workflow, holds, completion and unfreezing all record what staff did through
it, so every row has the same shape and a later change (say, a digest chain) has one place to
go. The source tree is searched for any other way of writing the table.
"""

import re
from pathlib import Path

import pytest

from relatch.audit.models import StaffAction
from relatch.audit.services import record_staff_action

SRC = Path(__file__).resolve().parents[2] / "src" / "relatch"
WRITER = SRC / "audit" / "services.py"
# Writing StaffAction rows other than through the service: the manager's writers, a model
# instance (then saved), or a queryset's update.
WRITES = re.compile(
    r"StaffAction\.objects\.(create|bulk_create|get_or_create|update_or_create|update)\b"
    r"|(?<!class )\bStaffAction\("
)


def _writes(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [f"{path.relative_to(SRC)}:{n}: {line.strip()}"
            for n, line in enumerate(lines, start=1) if WRITES.search(line)]


def test_only_the_audit_service_writes_staff_actions() -> None:
    assert _writes(WRITER), "the search no longer finds the service's own write"
    elsewhere = [hit for path in sorted(SRC.rglob("*.py")) if path != WRITER
                 for hit in _writes(path)]
    assert elsewhere == [], "write StaffAction through audit.services.record_staff_action:\n" + (
        "\n".join(elsewhere))


@pytest.mark.django_db
def test_a_staff_action_is_recorded_with_its_states(make_user) -> None:
    staff, subject = make_user(username="dana", is_staff=True), make_user(username="alice")
    action = record_staff_action(staff=staff, subject=subject, action="account:unfreeze",
                                 reason="checked by phone", before={"is_frozen": True},
                                 after={"is_frozen": False})
    assert StaffAction.objects.get() == action
    assert (action.staff, action.subject, action.action, action.reason) == (
        staff, subject, "account:unfreeze", "checked by phone")
    assert (action.before, action.after) == ({"is_frozen": True}, {"is_frozen": False})


@pytest.mark.django_db
def test_states_default_to_empty_and_the_subject_may_be_no_account(make_user) -> None:
    action = record_staff_action(staff=make_user(username="dana", is_staff=True), subject=None,
                                 action="recovery:deny")
    action.refresh_from_db()
    assert (action.subject, action.reason, action.before, action.after) == (None, "", {}, {})
