"""The allowed-transitions table, enforced by the one service that moves requests (DESIGN §5)."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.test import TestCase
from django.utils import timezone

from relatch.audit.models import EventKind, SecurityEvent, StaffAction
from relatch.recovery.models import RecoveryTransition, State
from relatch.recovery.workflow import ALLOWED, Actor, TransitionRefusedError, move
from tests.conftest import run_pending_tasks
from tests.recovery.requests import make_request

pytestmark = pytest.mark.django_db

PAIRS = [(a, b) for a in State for b in State if a != b]


def moved(recovery, to, **kwargs):
    with TestCase.captureOnCommitCallbacks(execute=True), transaction.atomic():
        result = move(recovery=recovery, to=to, **kwargs)
    run_pending_tasks()
    return result


@pytest.mark.parametrize(("start", "to"), PAIRS)
def test_every_pair_follows_the_table(user, staff, start, to):
    # A held request remembers where it was; staff resume it there and nowhere else.
    held = {"held_from": to} if start == State.ON_HOLD and to in ALLOWED[start] else {}
    recovery = make_request(user, state=start, **held)
    wait = {"wait_ends_at": timezone.now() + timedelta(days=7)}
    if to in ALLOWED[start]:
        moved(recovery, to, actor=Actor.STAFF, staff=staff, reason="r", **wait)
        assert recovery.state == to
        assert RecoveryTransition.objects.filter(request=recovery, to_state=to).count() == 1
    else:
        with pytest.raises(TransitionRefusedError):
            moved(recovery, to, actor=Actor.STAFF, staff=staff, **wait)
        recovery.refresh_from_db()
        assert recovery.state == start
        assert not RecoveryTransition.objects.exists()


@pytest.mark.parametrize("terminal", [State.COMPLETED, State.DENIED, State.CANCELLED])
def test_terminal_states_go_nowhere(terminal):
    assert ALLOWED[terminal] == frozenset()


def test_completion_is_reached_from_approval_or_an_automatic_wait():
    """Staff complete from awaiting approval; the system completes an announced automatic
    wait (completion.py checks which)."""
    assert [s for s in State if State.COMPLETED in ALLOWED[s]] == [
        State.IN_WAITING_PERIOD, State.AWAITING_APPROVAL]


@pytest.mark.parametrize(("actor", "to", "allowed"), [
    (Actor.STAFF, State.AWAITING_PROOF, True),  # where it was
    (Actor.STAFF, State.AWAITING_APPROVAL, False),  # not somewhere else
    (Actor.SYSTEM, State.AWAITING_PROOF, False),  # a proof or a wait cannot resume it
    (Actor.REQUESTER, State.CANCELLED, True),  # its requester may withdraw it
    (Actor.STAFF, State.DENIED, True),
])
def test_only_staff_take_a_request_off_hold_to_where_it_was(user, staff, actor, to, allowed):
    """DESIGN §5: "this wasn't me" holds; staff decide."""
    recovery = make_request(user, state=State.ON_HOLD, held_from=State.AWAITING_PROOF)
    who = {"staff": staff} if actor == Actor.STAFF else {}
    if allowed:
        moved(recovery, to, actor=actor, reason="r", **who)
        assert recovery.state == to and recovery.held_from == ""
    else:
        with pytest.raises(TransitionRefusedError, match="on hold"):
            moved(recovery, to, actor=actor, **who)


@pytest.mark.parametrize("to", [State.AWAITING_APPROVAL, State.IN_WAITING_PERIOD])
def test_a_block_stops_every_forward_move(user, staff, to):
    """Blocks are read at every transition, not only at filing (issue 15 attack 4)."""
    from relatch.recovery.models import RecoveryBlock

    RecoveryBlock.objects.create(user=user, until=timezone.now() + timedelta(days=30),
                                 reason="not me")
    recovery = make_request(user, state=State.AWAITING_PROOF)
    with pytest.raises(TransitionRefusedError, match="lift the block"):
        moved(recovery, to, actor=Actor.STAFF, staff=staff,
              wait_ends_at=timezone.now() + timedelta(days=7))
    moved(recovery, State.DENIED, actor=Actor.STAFF, staff=staff, reason="fake")  # exits stay
    assert recovery.state == State.DENIED


def test_a_staff_move_is_a_staff_action_and_a_security_event(user, staff, mail):
    recovery = make_request(user)
    moved(recovery, State.AWAITING_PROOF, actor=Actor.STAFF, staff=staff, reason="asked for proof")
    action = StaffAction.objects.get()
    assert (action.staff, action.subject, action.action) == (staff, user, "recovery:awaiting_proof")
    assert action.before["state"] == "submitted" and action.after["state"] == "awaiting_proof"
    assert SecurityEvent.objects.filter(user=user, kind=EventKind.RECOVERY_STATE_CHANGED).exists()


# Who hears of which move: tests/recovery/test_request_mail.py.


def test_an_unconfirmed_contact_hears_nothing(user, staff, mail):
    recovery = make_request(user, contact="claimant@example.net", contact_confirmed_at=None)
    moved(recovery, State.DENIED, actor=Actor.STAFF, staff=staff, reason="no proof")
    assert mail.to("claimant@example.net") == []


@pytest.mark.parametrize("ends", [None, timedelta(minutes=-1)])
def test_a_waiting_period_needs_a_future_end(user, staff, ends):
    recovery = make_request(user, state=State.AWAITING_PROOF)
    end = None if ends is None else timezone.now() + ends
    with pytest.raises(TransitionRefusedError, match="future"):
        moved(recovery, State.IN_WAITING_PERIOD, actor=Actor.STAFF, staff=staff, wait_ends_at=end)
    recovery.refresh_from_db()
    assert recovery.state == State.AWAITING_PROOF and recovery.wait_ends_at is None


def test_a_staff_move_must_name_the_staff_member(user):
    recovery = make_request(user)
    with pytest.raises(TransitionRefusedError):
        moved(recovery, State.AWAITING_PROOF, actor=Actor.STAFF)
    assert not RecoveryTransition.objects.exists()
