"""The requester's side of account recovery in Chromium: "Can't sign in?", the request, the
contact code, the secret status page (issue 6; DESIGN §5; NIST N3, N8, N11).

The staff side, from the queue to the owner signing in again, is in test_desk.py.
"""

import re
from collections.abc import Callable

from playwright.sync_api import expect
from tests.browser.harness import Live, Visitor
from tests.browser.recovery_steps import (
    ask_what_to_do,
    enter_contact_code,
    expect_fact,
    file_request,
    open_status,
    request_id,
    shell,
    turn_on_app,
)

PASSWORD = "an old passphrase nobody remembers"


def test_cant_sign_in_routes_to_a_request_the_requester_follows_and_cancels(
    visitor: Visitor, live: Live
) -> None:
    owner = live.create_user("olek", PASSWORD)
    contact = "lost.and.found@example.net"

    # Password and mailbox are gone; an API token in a CI config is all that is left.
    ask_what_to_do(visitor, "An API token of the account", account="olek")
    status_url = file_request(
        visitor, username="olek", contact=contact, still_has=("An API token of the account",),
        what_happened="My mail provider closed my mailbox and I forgot the password.",
    )
    # Every verified address of the account hears, with a way to stop it (NIST N8, N11).
    notice = live.mail_text(owner, "recover")
    assert "olek" in notice and "/recovery/request/not-me/" in notice, notice

    open_status(visitor, status_url)
    expect_fact(visitor, "State", "Submitted")
    main = visitor.page.get_by_role("main")
    # One timeline, then one next step (issue 19): nothing asked yet, staff act next.
    expect(main.get_by_role("region", name="What happened")).to_contain_text(
        re.compile(r"just now: You filed the request"))
    expect(main.get_by_role("region", name="Your next step")).to_contain_text(
        "Nothing to do now: staff will review your request")
    # The page says nothing about the account, not even that it exists (OWASP FP1).
    expect(main).not_to_contain_text("olek")

    visitor.page.get_by_label("Message to staff").fill("I can also show you my CI logs.")
    visitor.press("Send")
    visitor.see("Your recovery request")
    expect(main.get_by_role("article")).to_contain_text("I can also show you my CI logs.")
    expect(main.get_by_role("article")).to_contain_text("You,")

    visitor.press("Cancel my request")
    visitor.see("Your recovery request")
    expect_fact(visitor, "State", "Cancelled")
    expect(main).to_contain_text("This request was cancelled.")
    expect(main.get_by_role("button", name="Cancel my request")).to_have_count(0)
    assert "cancelled" in live.mail_text(contact, "cancelled").lower()


def test_the_advice_sends_people_who_still_have_their_mailbox_to_a_password_reset(
    visitor: Visitor,
) -> None:
    ask_what_to_do(visitor, "Access to an email address on the account",
                   account="olek@example.org")
    advice = visitor.page.get_by_role("region", name="What to do")
    expect(advice.get_by_role("heading")).to_have_text("Reset your password")
    # The form is filled in with the address typed on the first step.
    expect(advice.get_by_label("Username or email address")).to_have_value("olek@example.org")
    expect(advice).to_contain_text("I can't use any of these")  # the way on, not back here
    visitor.press("Mail me a reset link")
    visitor.see("Check your mail")


def test_the_owner_stops_a_request_they_did_not_make_with_one_click(
    make_visitor: Callable[[], Visitor], live: Live
) -> None:
    owner = live.create_user("ines", PASSWORD)
    intruder = make_visitor()
    ask_what_to_do(intruder, account="ines")
    status_url = file_request(intruder, username="ines", contact="not.ines@example.net",
                              what_happened="I am Ines, honestly. Lost everything.")

    ines = make_visitor()
    ines.page.goto(live.link(owner, r"/recovery/request/not-me/"))
    ines.see("Stop this recovery request?")
    ines.press("This wasn't me")
    ines.see("The request is on hold")

    # Held, never cancelled (a hijacker could click the same link): staff decide. The
    # requester reads that staff review it, not who objected.
    open_status(intruder, status_url)
    expect_fact(intruder, "State", "Waiting for staff review")
    # A new request is held as it is filed, for staff, with the same words.
    ask_what_to_do(intruder, account="ines")
    again = file_request(intruder, username="ines", contact="not.ines@example.net",
                         what_happened="Please, it really is me.")
    open_status(intruder, again)
    expect_fact(intruder, "State", "Waiting for staff review")
    state = shell(live, "from relatch.recovery.models import RecoveryRequest as R; "
                        f"print(R.objects.get(public_id={request_id(intruder)!r}).state)")
    assert state == "on_hold"  # what staff see: held, at the top of the desk



def test_i_cant_use_any_of_these_makes_a_request_that_counts_the_password(
    make_visitor: Callable[[], Visitor], live: Live
) -> None:
    """Issue 19: the password was right, the app is gone. From the second step, one page
    makes a request that already counts the password; the one code mailed to an address of
    the account confirms the contact and proves that mailbox."""
    owner = live.create_user("petra", PASSWORD)
    before = make_visitor()
    before.sign_in("petra", PASSWORD)
    before.see(re.compile("Your account"))
    before.goto("/account/two-factor/")
    before.see("Two-step sign-in")
    turn_on_app(before)

    locked_out = make_visitor()  # a new browser; the phone with the app is gone
    locked_out.sign_in("petra", PASSWORD)
    locked_out.see("Confirm it is you")
    locked_out.page.get_by_role("link", name="I can't use any of these").click()
    locked_out.see("Ask for recovery from here")
    main = locked_out.page.get_by_role("main")
    expect(main).not_to_contain_text(owner)  # shown masked only (ASVS 6.3.8)
    contact = locked_out.page.get_by_role("group", name="Where do we write to you?")
    contact.get_by_label("p***@example.org").check()
    locked_out.page.get_by_label("What happened?").fill("My phone and its app are gone.")
    locked_out.page.get_by_label(re.compile("^I agree to the code of conduct")).check()
    locked_out.page.get_by_label(re.compile("^I understand that review takes time")).check()
    mails_before = len(live.mailbox.to(owner))
    locked_out.press("Send me a code")
    locked_out.see("Enter the code")
    expect(main).to_contain_text("also proves you read its mail")
    status_url = enter_contact_code(locked_out, owner, mails_before)
    open_status(locked_out, status_url)
    proofs = shell(live, "from relatch.recovery.models import RecoveryProof as P; "
                         "print(sorted((p.kind, p.status) for p in P.objects.all()))")
    assert proofs == "[('account_email', 'satisfied'), ('password', 'satisfied')]", proofs
