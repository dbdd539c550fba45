"""The requester's status through the API as the status page tells it (issue 19): the same
timeline and the same one next step, read from the page's own read model, and nothing the
page does not show (ASVS 6.3.8: no account fact for the holder of a status link)."""

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from relatch.recovery.desk.services import deny, message_requester
from relatch.recovery.models import ProofKind, RecoveryProof, RecoveryTransition, State
from relatch.recovery.proofs import services as proof_services
from relatch.recovery.proofs.automatic import request_matching_proofs
from relatch.recovery.requester.links import status_token
from relatch.recovery.requester.services import BLOCKED_REASON
from tests.conftest import PASSWORD
from tests.mfa.factor_rows import add_app
from tests.recovery.proof_rows import committed
from tests.recovery.requests import age_password, make_request, satisfy
from tests.recovery.test_status_timeline import read, timeline

pytestmark = pytest.mark.django_db
API = "/api/v1/recovery/status"
EMAIL_LABEL = "A code sent to an address of the account"


def status_of(client: Client, recovery: Any) -> dict[str, Any]:
    credential = f"{recovery.public_id}.{status_token(recovery)}"
    response = client.get(API, headers={"Authorization": f"Bearer {credential}"})
    assert response.status_code == 200, response.content
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
def staff(make_user: Any) -> Any:
    member = make_user(username="dana", is_staff=True)
    add_app(member)  # the desk's services require a second factor
    return member


def moment(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def to_ms(value: datetime | None) -> datetime | None:
    """``value`` as the API writes it: to the millisecond."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000) if value else None


def texts(body: dict[str, Any]) -> list[str]:
    return [entry["text"] for entry in body["timeline"]]


def waiting_with_password(user: Any, staff: Any) -> Any:
    """A 2FA account, the password given, the mailed code still asked: a 7-day wait that
    the code would end sooner (as in tests/recovery/test_status_timeline.py)."""
    add_app(user)
    age_password(user)
    recovery = make_request(user, state=State.SUBMITTED, still_has=["password", "email"])
    committed(request_matching_proofs, recovery=recovery)
    password = recovery.proofs.get(kind=ProofKind.PASSWORD)
    assert committed(proof_services.submit_password, proof=password, password=PASSWORD)
    committed(message_requester, recovery=recovery, staff=staff, body="We see your proof.")
    recovery.refresh_from_db()
    assert recovery.state == State.IN_WAITING_PERIOD
    return recovery


def test_a_wait_says_when_it_ends_and_which_proofs_end_it_sooner(
    client: Client, user: Any, staff: Any
) -> None:
    recovery = waiting_with_password(user, staff)
    body = status_of(client, recovery)

    assert texts(body) == [
        "You filed the request and confirmed your contact address.",
        "From what you still have, we asked for a proof: The account's password.",
        f"From what you still have, we asked for a proof: {EMAIL_LABEL}.",
        "Proof accepted: The account's password.",
        "A waiting period started.",
        "We see your proof.",
    ]
    assert [e["kind"] for e in body["timeline"]] == [
        "filed", "proof", "proof", "proof", "state", "message"]
    assert body["timeline"][-1]["author"] == "staff"
    wait = body["timeline"][4]
    assert (moment(wait["ends_at"]), wait["ended"]) == (to_ms(recovery.wait_ends_at), False)
    assert [e["ends_at"] for i, e in enumerate(body["timeline"]) if i != 4] == [None] * 5
    # The same words as the page, line for line (it adds the times).
    page = timeline(read(client, recovery))
    assert all(text in line for text, line in zip(texts(body), page, strict=True))

    step = body["next_step"]
    asked = recovery.proofs.get(kind=ProofKind.ACCOUNT_EMAIL)
    assert (step["kind"], step["wait_over"], step["sooner"]) == ("wait", False, True)
    assert moment(step["wait_ends_at"]) == to_ms(recovery.wait_ends_at)
    assert step["completes_automatically"] is False  # staff then decide
    assert [(p["id"], p["kind"]) for p in step["sooner_proofs"]] == [
        (asked.pk, "account_email")]
    assert step["proofs"] == [] and step["outcome"] is None
    # Every kind but the one resting on what the password rests on: knowledge.
    kinds = [k["kind"] for k in step["sooner_kinds"]]
    assert kinds == ["security_key", "totp", "recovery_code", "api_token", "repo_branch",
                     "account_email", "co_owner"]
    assert {"kind": "account_email", "label": EMAIL_LABEL} in step["sooner_kinds"]
    # No staff reason: "two-step sign-in" would tell a stranger the account has a factor.
    assert "two-step" not in str(body) and "independent source" not in str(body)


def test_a_wait_that_completes_by_itself_says_so_and_offers_no_proof(
    client: Client, user: Any
) -> None:
    ends = timezone.now() + timedelta(hours=24, minutes=1)
    recovery = make_request(user, state=State.IN_WAITING_PERIOD, completes_automatically=True,
                            wait_ends_at=ends)
    satisfy(recovery, ProofKind.PASSWORD, ProofKind.API_TOKEN)
    RecoveryProof.objects.create(request=recovery, kind=ProofKind.ACCOUNT_EMAIL)
    step = status_of(client, recovery)["next_step"]
    assert (step["kind"], moment(step["wait_ends_at"])) == ("wait", to_ms(ends))
    assert (step["completes_automatically"], step["sooner"]) == (True, False)
    assert step["sooner_proofs"] == [] and step["sooner_kinds"] == []


def test_pending_proofs_are_the_next_step_with_the_ids_that_answer_them(
    client: Client, user: Any, staff: Any
) -> None:
    recovery = make_request(user, state=State.AWAITING_PROOF)
    token = committed(proof_services.request_proof, recovery=recovery,
                      kind=ProofKind.API_TOKEN, staff=staff)
    email = committed(proof_services.request_proof, recovery=recovery,
                      kind=ProofKind.ACCOUNT_EMAIL, staff=staff)
    body = status_of(client, recovery)

    step = body["next_step"]
    assert step["kind"] == "proofs"
    assert [(p["id"], p["kind"], p["kind_label"], p["status"]) for p in step["proofs"]] == [
        (token.pk, "api_token", str(ProofKind.API_TOKEN.label), "pending"),
        (email.pk, "account_email", EMAIL_LABEL, "pending"),
    ]
    assert all(p["instructions"] for p in step["proofs"])
    assert step["proofs"] == body["pending_proofs"]
    assert (step["wait_ends_at"], step["sooner"], step["outcome"]) == (None, False, None)
    assert texts(body)[1:] == [
        f"Staff asked for a proof: {ProofKind.API_TOKEN.label}.",
        f"Staff asked for a proof: {EMAIL_LABEL}.",
    ]
    # The ids are the proof API's: answering one there works.
    credential = f"{recovery.public_id}.{status_token(recovery)}"
    answered = client.post(f"{API}/proofs/{token.pk}/answer",
                           {"answer": "relatch-not-a-token"}, content_type="application/json",
                           headers={"Authorization": f"Bearer {credential}"})
    assert (answered.status_code, answered.json()["detail"]) == (
        400, "That is not right. 4 attempts left.")


@pytest.mark.parametrize(("state", "last"), [
    (State.DENIED, "Staff denied the request."),
    (State.CANCELLED, "You cancelled the request."),
])
def test_a_finished_request_says_how_it_ended_and_no_staff_reason(
    client: Client, user: Any, staff: Any, state: State, last: str
) -> None:
    recovery = make_request(user, state=State.AWAITING_APPROVAL)
    if state == State.DENIED:
        committed(deny, recovery=recovery, staff=staff, reason="Owns no project.")
    else:
        credential = f"{recovery.public_id}.{status_token(recovery)}"
        cancelled = client.post(f"{API}/cancel", content_type="application/json",
                                headers={"Authorization": f"Bearer {credential}"})
        assert cancelled.status_code == 200
        assert cancelled.json()["next_step"]["outcome"] == "cancelled"
    recovery.refresh_from_db()
    body = status_of(client, recovery)
    step = body["next_step"]
    assert (step["kind"], step["outcome"], step["proofs"]) == ("finished", state.value, [])
    assert (step["wait_ends_at"], step["sooner"]) == (None, False)
    assert texts(body)[-1] == last
    assert "no project" not in str(body).lower()  # the reason is an account fact


def test_a_request_refused_quietly_reads_as_a_submitted_one(
    client: Client, user: Any
) -> None:
    """Cancelled because the account is blocked: its holder must not learn that, so no
    outcome and no cancellation, just the filing, as for any request staff have not read."""
    recovery = make_request(user, state=State.CANCELLED)
    RecoveryTransition.objects.create(
        request=recovery, from_state=State.SUBMITTED, to_state=State.CANCELLED,
        actor=RecoveryTransition.Actor.SYSTEM, reason=BLOCKED_REASON)
    body = status_of(client, recovery)
    assert body["state"] == State.SUBMITTED
    assert texts(body) == ["You filed the request and confirmed your contact address."]
    step = body["next_step"]
    assert (step["kind"], step["outcome"]) == ("staff", None)
