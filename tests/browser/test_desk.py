"""The staff desk in Chromium, from the queue to the owner signing in again (issue 6; DESIGN §5;
NIST N6, N8; ASVS 6.4.4).

The account: rosa, with an authenticator app and no projects. She lost her phone, her recovery
codes and her mailbox, but remembers her password. Staff ask for the password as a proof; one
proof on an account with a second factor starts the enforced waiting period; one staff approval
is enough for an account without projects (relatch.recovery.policy). Staff themselves must turn
on two-step sign-in before the desk opens.
"""

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from playwright.sync_api import expect
from tests.browser.harness import Live, Visitor
from tests.browser.recovery_steps import (
    ask_what_to_do,
    expect_fact,
    file_request,
    open_status,
    request_id,
    shell,
    staff_member,
    turn_on_app,
)

ROSA_PASSWORD = "rosa's passphrase from years ago"
NEW_PASSWORD = "a fresh passphrase after recovery"
STAFF_PASSWORD = "the desk is not for everyone"
OWNER = "rosa@example.org"
CONTACT = "rosa.new@example.net"


def test_staff_take_a_request_from_the_queue_to_completion(
    make_visitor: Callable[[], Visitor], live: Live
) -> None:
    rosa_before = make_visitor()
    _owner_with_an_app(live, rosa_before)

    # Phone, codes and mailbox gone: a fresh browser, the password is all she has.
    rosa = make_visitor()
    ask_what_to_do(rosa, "My password", account="rosa")
    status_url = file_request(rosa, username="rosa", contact=CONTACT, still_has=("My password",),
                              what_happened="My phone was stolen along with my mail app.")
    open_status(rosa, status_url)
    public_id = request_id(rosa)

    dana = make_visitor()
    staff_member(live, dana, "dana", STAFF_PASSWORD)
    _open_from_queue(dana, public_id)
    # What she said she still has (her password) was asked for as a proof when she filed.
    expect_fact(dana, "State", "Waiting for proof")
    expect_fact(dana, "Contact address", f"{CONTACT} (confirmed)")
    expect_fact(dana, "Authenticator app", re.compile(r"^since \d{1,2} [A-Z][a-z]{2} \d{4}$"))
    expect(dana.page.get_by_role("main")).to_contain_text("asked automatically")
    assert "status page" in live.mail_text(CONTACT, "a proof is needed")

    _answer_password_proof(rosa, status_url)
    expect_fact(rosa, "State", "In the waiting period")
    step = rosa.page.get_by_role("region", name="Your next step")
    expect(step).to_contain_text("Nothing to do: the wait ends in 6 days")
    ends = step.locator("time").first
    wait = datetime.fromisoformat(ends.get_attribute("datetime") or "") - datetime.now(UTC)
    assert timedelta(days=6) < wait <= timedelta(days=7), wait  # RECOVERY_WAIT, 7 days
    # The account's own addresses hear of the wait, in case it is not their owner asking.
    assert "waiting period ends" in live.mail_text(OWNER, "in the waiting period").lower()
    expect(step).to_contain_text("Another independent proof ends the wait sooner")

    # One approval now; completion is refused until the wait is over (NIST N6).
    dana.goto(f"/desk/{public_id}/")
    dana.see(f"Recovery request {public_id}")
    expect_fact(dana, "State", re.compile(r"^In the waiting period \(the wait ends in .+\)$"))
    dana.press("Approve")
    dana.see(f"Recovery request {public_id}")
    _expect_message(dana, "Approved (1 approval so far).")
    dana.press("Complete the recovery")
    dana.see(f"Recovery request {public_id}")
    _expect_message(dana, "This request cannot complete yet: A second proof from an "
                          "independent source, or the end of the waiting period")

    _end_the_wait(live, public_id)
    dana.goto(f"/desk/{public_id}/")
    dana.see(f"Recovery request {public_id}")
    expect_fact(dana, "State", "Waiting for staff approval")
    expect(dana.page.get_by_role("main")).to_contain_text("The policy allows completion.")
    dana.press("Complete the recovery")
    dana.see(f"Recovery request {public_id}")
    _expect_message(dana, "The recovery is complete; the requester was sent a link to set a "
                          "password.")
    expect_fact(dana, "State", "Completed")

    _back_in(rosa, live, status_url)
    # Her old browser session ended with the recovery.
    rosa_before.goto("/account/")
    rosa_before.see("Sign in")


def _owner_with_an_app(live: Live, visitor: Visitor) -> None:
    """rosa, as she was: signed in, with recovery codes and an authenticator app."""
    live.create_user("rosa", ROSA_PASSWORD)
    visitor.sign_in("rosa", ROSA_PASSWORD)
    visitor.see(re.compile("Your account"))
    visitor.goto("/account/two-factor/")
    visitor.see("Two-step sign-in")
    turn_on_app(visitor)


def _open_from_queue(staff: Visitor, public_id: str) -> None:
    staff.goto("/desk/")
    staff.see("Recovery desk")
    row = staff.page.get_by_role("row").filter(has_text=public_id)
    expect(row).to_contain_text("rosa")
    expect(row).to_contain_text("matches an account")
    expect(row).to_contain_text("Waiting for proof")
    row.get_by_role("link", name=public_id).click()
    staff.see(f"Recovery request {public_id}")


def _expect_message(visitor: Visitor, text: str) -> None:
    expect(visitor.page.locator(".messages")).to_contain_text(text)


def _answer_password_proof(rosa: Visitor, status_url: str) -> None:
    open_status(rosa, status_url)
    expect_fact(rosa, "State", "Waiting for proof")
    proof = rosa.page.get_by_role("region", name="The account's password")
    expect(proof).to_contain_text("Enter the account's current password.")
    proof.get_by_role("link", name="Complete this proof").click()
    rosa.see("The account's password")
    rosa.page.get_by_label("The account's current password").fill(ROSA_PASSWORD)
    rosa.press("Check the password")
    rosa.see("The account's password")
    _expect_message(rosa, "Proof accepted. Thank you.")
    rosa.page.get_by_role("link", name="Back to your request").click()
    rosa.see("Your recovery request")


def _end_the_wait(live: Live, public_id: str) -> None:
    """Seven days pass. The waiting period is real time (RELATCH_RECOVERY_WAIT_DAYS), so its
    end is moved into the past in the server's database, as the unit tests do
    (tests/recovery/requests.end_wait); then the operator runs the housekeeping pass that the
    background tick would run, which moves the request on."""
    moved = shell(live, (
        "from datetime import timedelta; from django.utils import timezone; "
        "from relatch.recovery.models import RecoveryRequest as R; "
        f"print(R.objects.filter(public_id={public_id!r}, state='in_waiting_period')"
        ".update(wait_ends_at=timezone.now() - timedelta(minutes=1), "
        "wait_started_at=timezone.now() - timedelta(days=7, minutes=1)))"
    ))
    assert moved == "1", moved
    # Not asserting "Waits ended 1": the server's own scheduled tick may get there first; the
    # desk page shows the outcome either way.
    tick = live.server.relatch("recovery_tick")
    assert tick.returncode == 0, tick.stderr


def _back_in(rosa: Visitor, live: Live, status_url: str) -> None:
    """The reset link goes to the confirmed contact address; a new password; signed in."""
    rosa.page.goto(live.link(CONTACT, r"/account/reset/[^/]+/[^/]+/"))
    rosa.see("Choose a new password")
    rosa.page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    rosa.page.get_by_label("New password again").fill(NEW_PASSWORD)
    rosa.press("Set the new password")
    rosa.see("Sign in")
    rosa.page.get_by_label("Username or email address").fill(CONTACT)
    rosa.page.get_by_label("Password", exact=True).fill(NEW_PASSWORD)
    rosa.press("Sign in")
    rosa.see(re.compile("Your account"))
    expect(rosa.page.get_by_role("navigation", name="Main")).to_contain_text("rosa")

    open_status(rosa, status_url)
    expect_fact(rosa, "State", "Completed")
