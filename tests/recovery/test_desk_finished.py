"""A finished request (completed, denied, cancelled, closed for silence) shows how it ended and
offers no more actions; a POST to one of its actions changes nothing and says why (issue 19).
The account's own actions (the block, the freeze) stay on its page: staff deny a hijacker's
request, then unfreeze the owner's account."""

import re

import pytest

from relatch.accounts.freeze import freeze_account
from relatch.audit.models import StaffAction
from relatch.recovery.desk import services
from relatch.recovery.models import (
    ProofKind,
    RecoveryApproval,
    RecoveryMessage,
    RecoveryProof,
    RecoveryRequest,
    State,
)
from tests.conftest import sign_in
from tests.recovery.requests import make_request, satisfy

pytestmark = pytest.mark.django_db

FINISHED = [State.COMPLETED, State.DENIED, State.CANCELLED, State.CLOSED_NO_RESPONSE]
# Every request-level action, with a form that would be valid on an open request.
ACTIONS = [("assign-me", {}), ("assign", {"assignee": "erin"}), ("message", {"body": "hi"}),
           ("proof", {"kind": ProofKind.API_TOKEN}), ("approve", {}), ("deny", {"reason": "r"}),
           ("override", {"reason": "r"}), ("complete", {}), ("resume", {"reason": "r"})]
BUTTONS = ["Assign to me", "Ask for this proof", "Send message", ">Approve<",
           "Complete the recovery", ">Deny<", "Override: go on without a proof"]


@pytest.fixture
def staff(make_staff):
    return make_staff()


@pytest.fixture
def desk(client, staff):
    return sign_in(client, staff)


def detail_url(recovery):
    return f"/desk/{recovery.public_id}/"


@pytest.mark.parametrize("state", FINISHED)
def test_a_finished_request_shows_its_outcome_and_no_buttons(desk, user, state):
    recovery = make_request(user, state=state)
    page = desk.get(detail_url(recovery)).content.decode()
    assert f"Outcome: {State(state).label.lower()}" in page
    assert "there is nothing more to decide on it" in page
    for button in BUTTONS:
        assert button not in page


@pytest.mark.parametrize("state", [State.SUBMITTED, State.AWAITING_APPROVAL])
def test_an_open_request_keeps_its_buttons(desk, user, state):
    page = desk.get(detail_url(make_request(user, state=state))).content.decode()
    assert "Outcome:" not in page
    for button in BUTTONS:
        assert button in page


def test_the_outcome_names_the_staff_member_when_and_why(desk, user):
    recovery = make_request(user)
    assert desk.post(f"{detail_url(recovery)}deny/", {"reason": "Not the owner"}).status_code \
        == 302
    recovery.refresh_from_db()
    page = desk.get(detail_url(recovery)).content.decode()
    when = recovery.closed_at.strftime("%Y-%m-%d %H:%M")  # the exact moment, on hover
    assert re.search(rf'Denied <time datetime="[^"]+" title="{when}:\d\d UTC">just now</time> '
                     r"by staff member dana: Not the owner\.", page)


def test_the_outcome_says_when_relatch_closed_it_by_itself(desk, user):
    from relatch.recovery import workflow

    recovery = make_request(user, state=State.AWAITING_PROOF)
    workflow.move(recovery=recovery, to=State.CLOSED_NO_RESPONSE, actor=workflow.Actor.SYSTEM)
    page = desk.get(detail_url(recovery)).content.decode()
    assert "Closed for lack of response <time" in page
    assert "by Relatch, automatically" in page and "staff member" not in page


@pytest.mark.parametrize("state", FINISHED)
@pytest.mark.parametrize(("action", "data"), ACTIONS)
def test_an_action_on_a_finished_request_changes_nothing(desk, make_staff, user, state,
                                                         action, data):
    make_staff("erin")
    recovery = make_request(user, state=state)
    satisfy(recovery, ProofKind.API_TOKEN, ProofKind.PASSWORD)
    response = desk.post(f"{detail_url(recovery)}{action}/", data)
    assert response.status_code == 409
    assert (f"This request is finished ({State(state).label.lower()}): nothing more can be "
            "done on it.") in response.content.decode()
    after = RecoveryRequest.objects.get(pk=recovery.pk)
    assert (after.state, after.assigned_to, after.override_reason) == (state, None, "")
    assert not StaffAction.objects.exists()
    assert not RecoveryMessage.objects.exists() and not RecoveryApproval.objects.exists()
    assert RecoveryProof.objects.filter(request=recovery).count() == 2


@pytest.mark.parametrize("state", FINISHED)
def test_the_services_refuse_too(staff, user, state):
    """The API and any other caller go through the services: they refuse under the lock."""
    recovery = make_request(user, state=state)
    for act in (lambda: services.assign(recovery=recovery, staff=staff, assignee=staff),
                lambda: services.approve(recovery=recovery, staff=staff),
                lambda: services.deny(recovery=recovery, staff=staff, reason="r"),
                lambda: services.complete(recovery=recovery, staff=staff)):
        with pytest.raises(services.DeskRefusedError, match="finished"):
            act()
    recovery.refresh_from_db()
    assert recovery.state == state and recovery.assigned_to is None


def test_the_account_can_still_be_unfrozen_from_a_denied_request(desk, staff, user):
    recovery = make_request(user, state=State.DENIED)
    freeze_account(user=user, reason="this wasn't me")
    page = desk.get(detail_url(recovery)).content.decode()
    assert "Unfreeze the account" in page and ">Deny<" not in page
    response = desk.post(f"{detail_url(recovery)}unfreeze/", {"reason": "The owner called"})
    assert response.status_code == 302
    user.refresh_from_db()
    assert not user.is_frozen
    assert StaffAction.objects.filter(staff=staff, action="account:unfreeze").exists()
