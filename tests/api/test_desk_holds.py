"""The desk's answers to "this wasn't me" through the JSON API: resume, lift the block,
unfreeze, and completion with reversals (DESIGN §5; issue 15). Every refusal says why and
changes nothing."""

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from relatch.accounts.freeze import freeze_account
from relatch.accounts.models import Email
from relatch.audit.models import EventKind, SecurityEvent, StaffAction
from relatch.recovery.models import RecoveryBlock, State
from tests.recovery.attack_steps import api_post, desk_detail, staff_api
from tests.recovery.requests import make_request, satisfy

pytestmark = pytest.mark.django_db


@pytest.fixture
def desk(make_user: Any) -> dict[str, str]:
    return staff_api(make_user, "dana")


def held(user: Any) -> Any:
    """A request held by a "this wasn't me", the account blocked and frozen."""
    recovery = make_request(user, state=State.ON_HOLD, held_from=State.AWAITING_PROOF,
                            urgent_since=timezone.now())
    RecoveryBlock.objects.create(user=user, until=timezone.now() + timedelta(days=30),
                                 reason=f"not me: request {recovery.public_id}")
    freeze_account(user=user, reason="test")
    return recovery


@pytest.mark.parametrize("action", ["resume", "lift-block", "unfreeze"])
def test_each_answer_needs_a_written_reason(client: Any, user: Any, desk: Any,
                                            action: str) -> None:
    recovery = held(user)
    response = api_post(client, f"/desk/requests/{recovery.public_id}/{action}",
                        {"reason": "   "}, headers=desk)
    assert response.status_code == 422
    recovery.refresh_from_db()
    user.refresh_from_db()
    assert recovery.state == State.ON_HOLD and user.is_frozen
    assert RecoveryBlock.objects.filter(lifted_at__isnull=True).count() == 1


def test_resume_lifts_the_block_and_goes_back_to_where_it_was(client: Any, user: Any,
                                                              desk: Any) -> None:
    recovery = held(user)
    response = api_post(client, f"/desk/requests/{recovery.public_id}/resume",
                        {"reason": "Confirmed with the owner by phone."}, headers=desk)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["state"] == State.AWAITING_PROOF
    assert body["standing"]["block_until"] is None and body["standing"]["urgent_since"] is None
    assert body["standing"]["account_frozen"] is True  # unfreezing is its own decision
    actions = set(StaffAction.objects.values_list("action", flat=True))
    assert {"recovery:lift_block", "recovery:awaiting_proof"} <= actions
    again = api_post(client, f"/desk/requests/{recovery.public_id}/resume",
                     {"reason": "twice"}, headers=desk)
    assert again.status_code == 409 and "Only a request on hold" in again.json()["detail"]


def test_lift_and_unfreeze_refuse_when_there_is_nothing_to_lift(client: Any, user: Any,
                                                                 desk: Any) -> None:
    recovery = make_request(user, state=State.AWAITING_PROOF)
    for action, words in (("lift-block", "No block stands"), ("unfreeze", "not frozen")):
        response = api_post(client, f"/desk/requests/{recovery.public_id}/{action}",
                            {"reason": "tidy up"}, headers=desk)
        assert response.status_code == 409 and words in response.json()["detail"]
    assert not StaffAction.objects.exists()


def test_unfreeze_is_recorded_and_told_to_the_history(client: Any, user: Any,
                                                      desk: Any) -> None:
    recovery = held(user)
    response = api_post(client, f"/desk/requests/{recovery.public_id}/unfreeze",
                        {"reason": "The objection came from the hijacker's address."},
                        headers=desk)
    assert response.status_code == 200
    user.refresh_from_db()
    assert not user.is_frozen
    assert SecurityEvent.objects.filter(user=user, kind=EventKind.ACCOUNT_UNFROZEN).exists()
    assert StaffAction.objects.get(action="account:unfreeze").reason.startswith("The objection")


def test_completion_reverses_only_changes_the_detail_offers(client: Any, user: Any,
                                                            desk: Any) -> None:
    """A change id that is not one of the request's reversible changes is a 400 and nothing
    completes; an offered one is reversed with the completion."""
    Email.objects.create(user=user, address="mallory@evil.example", verified=True,
                         verified_at=timezone.now())
    added = SecurityEvent.objects.create(user=user, kind=EventKind.EMAIL_ADDED,
                                         details={"address": "mallory@evil.example"})
    signin = SecurityEvent.objects.create(user=user, kind=EventKind.SIGNIN_SUCCEEDED)
    recovery = make_request(user, state=State.AWAITING_APPROVAL)
    satisfy(recovery, "api_token")
    api_post(client, f"/desk/requests/{recovery.public_id}/approve", headers=desk)
    changes = desk_detail(client, desk, recovery)["changes"]
    assert [c["id"] for c in changes if c["undo"]] == [added.pk]
    refused = api_post(client, f"/desk/requests/{recovery.public_id}/complete",
                       {"reverse": [signin.pk]}, headers=desk)
    assert refused.status_code == 400
    recovery.refresh_from_db()
    assert recovery.state == State.AWAITING_APPROVAL
    done = api_post(client, f"/desk/requests/{recovery.public_id}/complete",
                    {"reverse": [added.pk]}, headers=desk)
    assert done.status_code == 200, done.content
    assert not Email.objects.filter(address="mallory@evil.example").exists()


def test_the_api_says_how_a_finished_request_ended(client: Any, user: Any, desk: Any) -> None:
    recovery = make_request(user, state=State.AWAITING_PROOF)
    assert desk_detail(client, desk, recovery)["outcome"] is None
    response = api_post(client, f"/desk/requests/{recovery.public_id}/deny",
                        {"reason": "Not the owner"}, headers=desk)
    assert response.status_code == 200, response.content
    outcome = desk_detail(client, desk, recovery)["outcome"]
    assert (outcome["state_label"], outcome["by"], outcome["reason"]) == (
        "Denied", "staff member dana", "Not the owner")
    recovery.refresh_from_db()
    assert outcome["at"] is not None and recovery.closed_at is not None
