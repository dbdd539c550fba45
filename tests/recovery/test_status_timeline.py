"""The requester's status page as one timeline and one next step (issue 19; DESIGN §5).

People read the old page as contradicting itself during a wait ("You need do nothing" above
"What we need from you now"), never learnt that a second proof ends a wait sooner, and saw no
history. Now: what happened, in order, from the rows that exist; then one block saying what to
do, or that nothing is to be done and until when. Nothing on it is an account fact (ASVS 6.3.8,
OWASP FP1): no staff reason, no word of who objected, no trace of how a proof was judged.
"""

import html
import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from relatch.audit.models import EventKind, SecurityEvent
from relatch.recovery.desk.services import message_requester
from relatch.recovery.holds import hold
from relatch.recovery.models import ProofKind, RecoveryProof, State
from relatch.recovery.proofs import services
from tests.conftest import PASSWORD
from tests.mfa.factor_rows import add_app
from tests.recovery.proof_rows import committed
from tests.recovery.requests import age_password, make_request, satisfy
from tests.recovery.test_requester import status_path

pytestmark = pytest.mark.django_db
TIMELINE = re.compile(r'<ol class="timeline">(.*?)</ol>', re.S)


def read(client: Client, recovery: Any) -> str:
    response = client.get(status_path(recovery))
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def words(fragment: str) -> str:
    """What a reader sees: the text without tags, spaces folded."""
    text = " ".join(re.sub(r"<[^>]+>", " ", fragment).split())
    return re.sub(r" ([.,;:])", r"\1", text)


def next_step(page: str) -> str:
    start = page.index('<section aria-labelledby="next-heading"')
    return words(page[start:page.index("</section>", page.index("</h2>", start))])


def timeline(page: str) -> list[str]:
    found = TIMELINE.search(page)
    assert found, page
    return [words(item) for item in re.findall(r"<li>(.*?)</li>", found.group(1), re.S)]


def test_a_wait_reads_as_history_then_one_next_step_that_says_a_proof_ends_it_sooner(
    client: Client, user: Any, make_staff: Any
) -> None:
    """A 2FA account, the password given: a 7-day wait. The page tells the story in order,
    then "nothing to do" with the end, and that the code to the account's address, still
    asked for, would end the wait sooner, with its link."""
    add_app(user)
    age_password(user)
    recovery = make_request(user, state=State.SUBMITTED, still_has=["password", "email"])
    from relatch.recovery.proofs.automatic import request_matching_proofs

    committed(request_matching_proofs, recovery=recovery)
    password = recovery.proofs.get(kind=ProofKind.PASSWORD)
    assert committed(services.submit_password, proof=password, password=PASSWORD) is True
    committed(message_requester, recovery=recovery, staff=make_staff(),
              body="We see your proof.")
    recovery.refresh_from_db()
    assert recovery.state == State.IN_WAITING_PERIOD

    page = read(client, recovery)
    assert timeline(page) == [
        "just now: You filed the request and confirmed your contact address.",
        "just now: From what you still have, we asked for a proof: The account's password.",
        "just now: From what you still have, we asked for a proof: "
        "A code sent to an address of the account.",
        "just now: Proof accepted: The account's password.",
        "just now: A waiting period started. It ends in 6 days 23 hours.",
        "Staff, just now We see your proof.",
    ]
    step = next_step(page)
    assert step.startswith("Your next step Nothing to do: the wait ends in 6 days 23 hours; "
                           "staff then decide.")
    assert "Another independent proof ends the wait sooner." in step
    assert "a code sent to an address of the account" in step
    assert "the account's password" not in step.lower()  # given already: it cannot
    pending = recovery.proofs.get(kind=ProofKind.ACCOUNT_EMAIL)
    assert f"/recovery/proof/{pending.pk}/{recovery.public_id}/" in page
    # One next step, never two that disagree.
    assert "Give these proofs" not in page and "What we need from you" not in page
    assert page.count('aria-labelledby="next-heading"') == 1
    # The wait's end is a relative time, exact moment on hover (the times filter).
    assert re.search(r'<time datetime="[^"]+" title="[^"]+ UTC">in 6 days 23 hours</time>', page)
    # No staff reason: "two-step sign-in" would tell a stranger the account has a factor.
    assert "two-step" not in page and "independent source on" not in page


FINISHED = (State.COMPLETED, State.DENIED, State.CANCELLED)


@pytest.mark.parametrize(("state", "with_proof", "says", "offers"), [
    (State.SUBMITTED, False, "Nothing to do now: staff will review your request", ""),
    (State.AWAITING_PROOF, True, "Give these proofs to go on", "Complete this proof"),
    (State.AWAITING_PROOF, False, "Nothing to do now: staff will say what they need next", ""),
    (State.AWAITING_APPROVAL, False, "Nothing to do now: your proofs are enough. Staff are "
                                     "deciding", ""),
    (State.ON_HOLD, False, "Nothing to do now: staff need to review your request", ""),
    (State.ON_HOLD, True, "Staff review your request before it goes on", "Complete this proof"),
    (State.CLOSED_NO_RESPONSE, False, "Reopen it to go on", "Reopen my request"),
    (State.COMPLETED, False, "Outcome Your request was completed", ""),
    (State.DENIED, False, "Outcome Staff denied your request", ""),
    (State.CANCELLED, False, "Outcome This request was cancelled", ""),
])
def test_each_state_has_one_next_step(client: Client, user: Any, state: State,
                                      with_proof: bool, says: str, offers: str) -> None:
    """Open requests offer a message to staff and a cancel, plus what the step needs;
    finished ones show their outcome and no action at all."""
    recovery = make_request(user, state=state)
    if with_proof:
        RecoveryProof.objects.create(request=recovery, kind=ProofKind.API_TOKEN)
    page = read(client, recovery)
    assert says in next_step(page)
    always = {"Write to staff", "Cancel my request"} if state not in FINISHED else set()
    for action in ("Write to staff", "Cancel my request", "Reopen my request",
                   "Complete this proof"):
        assert (action in page) == (action in always or action == offers), action
    assert ("Your next step" in page) == (state not in FINISHED)


def test_a_wait_that_ends_in_completion_says_so_and_offers_no_proof(
    client: Client, user: Any
) -> None:
    recovery = make_request(user, state=State.IN_WAITING_PERIOD, completes_automatically=True,
                            wait_ends_at=timezone.now() + timedelta(hours=24, minutes=1))
    satisfy(recovery, ProofKind.PASSWORD, ProofKind.API_TOKEN)
    RecoveryProof.objects.create(request=recovery, kind=ProofKind.ACCOUNT_EMAIL)
    step = next_step(read(client, recovery))
    assert step == ("Your next step Nothing to do: your proofs are enough. Unless someone "
                    "objects, the request completes by itself when the wait ends, in 1 day.")


def test_which_kinds_end_the_wait_sooner_does_not_tell_how_a_proof_was_judged(
    client: Client, make_user: Any
) -> None:
    """A password set through a mailed reset link counts as the mailbox, not as knowledge
    (relatch.recovery.sources). Saying so, or dropping the mailbox proof from the list, would
    tell the holder of the status link that the password was reset by mail."""
    pages = []
    for name, reset_by_mail in (("kept", False), ("reset", True)):
        owner = make_user(username=name, email=f"{name}@example.org")
        add_app(owner)
        recovery = make_request(owner, state=State.IN_WAITING_PERIOD)
        satisfy(recovery, ProofKind.PASSWORD)
        if reset_by_mail:
            SecurityEvent.objects.create(user=owner, kind=EventKind.PASSWORD_RESET)
        pages.append(next_step(read(client, recovery)))
    assert pages[0] == pages[1]
    assert "a code sent to an address of the account" in pages[0]


def test_a_hold_reads_in_neutral_words(client: Client, user: Any) -> None:
    """The requester reads that staff review the request, never that someone objected."""
    recovery = make_request(user, state=State.AWAITING_PROOF)
    committed(hold, recovery=recovery, reason=f"this wasn't me (request {recovery.public_id})")
    page = read(client, recovery)
    assert "Staff need to review the request before it goes on." in timeline(page)[-1]
    assert "wasn't me" not in page.lower() and "objected" not in page
