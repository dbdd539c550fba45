"""Steps of the account-recovery walks shared by test_recovery.py and test_desk.py.

Each step is what a person does in the browser, found by the labels and headings they read;
every page it loads is audited (``Visitor.see``).
"""

import re
from email.message import EmailMessage

from playwright.sync_api import Locator, expect
from tests.browser.harness import Live, Visitor, totp_now
from tests.serving import wait_for

CODE_IN_MAIL = re.compile(r"Your code: (\d{6})")
STATUS_LINK = "/recovery/request/status/"
RECOVERY_CODE = re.compile(r"[0-9A-Z]{4}(?:-[0-9A-Z]{4}){4}")


def ask_what_to_do(visitor: Visitor, *still_has: str, account: str) -> None:
    """From the sign-in page, "Can't sign in?" for ``account`` with ``still_has`` ticked, to
    the advice."""
    visitor.goto("/account/login/")
    visitor.see("Sign in")
    visitor.page.get_by_role("link", name="Can't sign in?").click()
    visitor.see("Can't sign in?")
    visitor.fill_form(Username_or_email_address=account)
    visitor.press("Next")
    visitor.see("What do you still have?")
    answers = visitor.page.get_by_role("group", name="What do you still have?")
    for thing in still_has:
        answers.get_by_label(thing, exact=True).check()
    visitor.press("Show me what to do")
    visitor.see("Your way back in")


def file_request(visitor: Visitor, *, username: str, contact: str, what_happened: str,
                 still_has: tuple[str, ...] = ()) -> str:
    """From the advice "Ask staff for recovery" to a filed request; its mailed status URL.
    ``still_has``: the answers given on "Can't sign in?", which the form must keep, like the
    account's name (``username``)."""
    advice = visitor.page.get_by_role("region", name="What to do")
    expect(advice.get_by_role("heading")).to_have_text("Ask staff for recovery")
    advice.get_by_role("link", name="File a recovery request").click()
    visitor.see("Ask for account recovery")
    answers = visitor.page.get_by_role("group", name="What do you still have?")
    expect(answers.get_by_role("checkbox", checked=True)).to_have_count(len(still_has))
    for thing in still_has:
        expect(answers.get_by_label(thing, exact=True)).to_be_checked()
    expect(visitor.page.get_by_label("Username or email address", exact=True)).to_have_value(
        username)
    visitor.fill_form(Contact_address=contact)
    visitor.page.get_by_label("What happened?").fill(what_happened)
    visitor.page.get_by_label(re.compile("^I agree to the code of conduct")).check()
    visitor.page.get_by_label(re.compile("^I understand that review takes time")).check()
    mailbox = visitor.live.mailbox
    mails_before = len(mailbox.to(contact))
    visitor.press("Send me a code")
    visitor.see("Enter the code")
    return enter_contact_code(visitor, contact, mails_before)


def enter_contact_code(visitor: Visitor, contact: str, mails_before: int) -> str:
    """On "Enter the code": the code mailed to ``contact`` (after its ``mails_before``
    earlier mails) files the request; the status URL its "is filed" mail links to."""
    mailbox = visitor.live.mailbox
    code_mail = next_mail(visitor.live, contact, mails_before, "request code")
    code = CODE_IN_MAIL.search(mailbox.text(code_mail))
    assert code, mailbox.text(code_mail)
    visitor.page.get_by_label("Code from the mail").fill(code.group(1))
    mails_before = len(mailbox.to(contact))
    visitor.press("File my request")
    visitor.see("Your request is filed")
    filed = next_mail(visitor.live, contact, mails_before, "is filed")
    return next(url for url in mailbox.links(filed) if STATUS_LINK in url)


def next_mail(live: Live, address: str, seen: int, subject_part: str) -> EmailMessage:
    """The first mail to ``address`` after the ``seen`` earlier ones whose subject has
    ``subject_part``, waiting for the worker. (``Live.mail_text`` takes the newest match, which
    is an older mail while the new one is on its way when one address files twice.)"""

    def find() -> EmailMessage | None:
        for message in live.mailbox.to(address)[seen:]:
            if subject_part.lower() in str(message["Subject"]).lower():
                return message
        return None

    message = wait_for(find, timeout=45, interval=0.2)
    assert message, f"no new mail about {subject_part!r} to {address}: {live.subjects(address)}"
    return message


def open_status(visitor: Visitor, status_url: str) -> None:
    """The requester opens the secret link from their mail."""
    visitor.page.goto(status_url)
    visitor.see("Your recovery request")


def fact(visitor: Visitor, term: str) -> Locator:
    """The value for ``term`` in the page's list of facts (a <dl class="facts">)."""
    return visitor.page.locator(f"dl.facts dt:text-is('{term}') + dd")


def request_id(visitor: Visitor) -> str:
    """The request's public id, as its status page lists it."""
    return fact(visitor, "Request").inner_text()


def shell(live: Live, code: str) -> str:
    """Run ``code`` in ``relatch shell`` against the live server's data; the last line printed
    (the shell prints a banner first)."""
    done = live.server.relatch("shell", "-c", code)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    return lines[-1] if lines else ""


def expect_fact(visitor: Visitor, term: str, value: str | re.Pattern[str]) -> None:
    """The description list on the page says ``value`` for ``term``."""
    expect(fact(visitor, term)).to_have_text(value)


def staff_member(live: Live, visitor: Visitor, username: str, password: str) -> str:
    """A staff account made by an operator (``create_user(..., staff=True)``, as
    ``relatch createstaff`` does) that turns on an authenticator app itself, the way the desk
    tells it to; returns the app's secret."""
    live.create_user(username, password, staff=True)
    visitor.sign_in(username, password)
    visitor.see(re.compile("Your account"))
    visitor.goto("/desk/")
    # A stolen staff password alone must not open the desk (it can hand over accounts).
    visitor.see("Two-step sign-in needed")
    visitor.page.get_by_role("link", name="Set up two-step sign-in").click()
    visitor.see("Two-step sign-in")
    # Once the app is on, the wall's link brings them back to the desk (issue 19).
    return turn_on_app(visitor, lands_on="Recovery desk")


def turn_on_app(visitor: Visitor, *, lands_on: str = "Authenticator app") -> str:
    """From the two-step sign-in overview: recovery codes first (the product's gate), then an
    authenticator app, answered with pyotp; returns the app's secret. ``lands_on``: the
    heading of the page the enrolment finishes on (the task a wall sent them from)."""
    visitor.page.get_by_role("link", name="Set up an authenticator app").click()
    visitor.see("Recovery codes")  # the gate: saved codes before a first factor
    visitor.press("Make recovery codes")
    visitor.see("Your new recovery codes")
    codes = RECOVERY_CODE.findall(visitor.page.locator("#recovery-codes").inner_text())
    assert len(codes) == 8, codes
    visitor.page.get_by_role("link", name="I saved them: continue").click()
    visitor.see("Confirm you saved your recovery codes")
    visitor.page.get_by_label("One of your recovery codes").fill(codes[0])
    visitor.press("Confirm")
    visitor.see("Set up an authenticator app")  # back where the gate stopped them
    # The key printed for people who cannot scan the QR code, typed into "the app" (pyotp).
    secret = fact(visitor, "Secret key").inner_text().replace(" ", "")
    visitor.page.get_by_label("Code from the app").fill(totp_now(secret))
    visitor.press("Confirm and turn on")
    visitor.see(lands_on)
    expect(visitor.page.get_by_role("status").first).to_contain_text("Authenticator app added")
    return secret
