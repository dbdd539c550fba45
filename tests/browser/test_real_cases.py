"""The real lockouts, walked from the sign-in page to being signed in, counting clicks (issue 19).

PyPI's support tracker holds 261 account-recovery cases; these are its categories. Each walk
starts where a locked-out person starts (the sign-in page, or "Can't sign in?"), does what the
pages say, and must end signed in with no dead end. A click is a button pressed, a link
followed (on a page or in a mail), or a box ticked; typing is not. The counts are written in
docs/getting-back-in.md, and each walk checks its count against that table, so the document
cannot drift from the product.

Waiting periods are real time; where a walk reaches one, the server's database moves its end
into the past (as tests/browser/test_desk.py does) and the operator's housekeeping pass runs.
"""

import re
import time
from dataclasses import dataclass
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import expect
from tests.browser.harness import Live, Visitor
from tests.browser.mfa_steps import sign_out
from tests.browser.recovery_steps import shell, turn_on_app

PASSWORD = "the same old long passphrase"
NEW_PASSWORD = "a brand new long passphrase"
DOC = Path(__file__).resolve().parents[2] / "docs" / "getting-back-in.md"
# "| Lost phone or key, ... | 9 |": the case's name, then its clicks, in the doc's table.
ROW = re.compile(r"^\| (?P<case>[^|]+?) \| (?P<clicks>\d+) \|", re.MULTILINE)
ACCOUNT = re.compile("Your account")


def documented_clicks() -> dict[str, int]:
    return {m["case"]: int(m["clicks"]) for m in ROW.finditer(DOC.read_text())}


@dataclass
class Walk:
    """One person's way back in, click by click."""

    visitor: Visitor
    clicks: int = 0

    def link(self, name: str | re.Pattern[str]) -> None:
        self.visitor.page.get_by_role("link", name=name).first.click()
        self.visitor.page.wait_for_load_state("load")
        self.clicks += 1

    def press(self, name: str) -> None:
        self.visitor.press(name)
        self.clicks += 1

    def tick(self, label: str) -> None:
        self.visitor.page.get_by_label(label, exact=True).check()
        self.clicks += 1

    def mailed_link(self, address: str, pattern: str) -> None:
        self.visitor.page.goto(self.visitor.live.link(address, pattern))
        self.clicks += 1

    def type(self, label: str, text: str) -> None:
        self.visitor.page.get_by_label(label, exact=True).fill(text)

    def sign_in(self, identifier: str, password: str) -> None:
        """Typed into the sign-in page, which the walk is on; one press."""
        self.visitor.see("Sign in")
        self.type("Username or email address", identifier)
        self.type("Password", password)
        self.press("Sign in")

    def expect_clicks(self, case: str) -> None:
        documented = documented_clicks()
        assert case in documented, f"{case!r} is not in {DOC.name}: {sorted(documented)}"
        assert self.clicks == documented[case], (
            f"{case}: {self.clicks} clicks, {DOC.name} says {documented[case]}")

    def expect_signed_in(self, username: str) -> None:
        nav = self.visitor.page.get_by_role("navigation", name="Main")
        expect(nav).to_contain_text(username)


def owner_with_app(live: Live, visitor: Visitor, username: str) -> tuple[str, str]:
    """An account that turned on an app (and saved codes, the product's gate) in ``visitor``;
    signed out again. Its address and the app's secret."""
    address = live.create_user(username, PASSWORD)
    visitor.sign_in(username, PASSWORD)
    visitor.see(ACCOUNT)
    visitor.goto("/account/two-factor/")
    visitor.see("Two-step sign-in")
    secret = turn_on_app(visitor)
    sign_out(visitor)
    age_account(live, username)
    return address, secret


def age_account(live: Live, username: str) -> None:
    """Two months pass: the people in these cases had their accounts long before they lost
    something (a password set last week shows no more than the mailbox, by the source rules)."""
    done = shell(live, (
        "from datetime import timedelta; "
        "from relatch.accounts.models import Email, User; "
        "from relatch.audit.models import SecurityEvent; "
        "from django.db.models import F; "
        f"u = User.objects.get(username={username!r}); ago = timedelta(days=60); "
        "User.objects.filter(pk=u.pk).update(date_joined=F('date_joined') - ago); "
        "Email.objects.filter(user=u).update(verified_at=F('verified_at') - ago); "
        "from relatch.mfa.models import TotpDevice; "
        "TotpDevice.objects.filter(user=u).update(created_at=F('created_at') - ago); "
        "print(SecurityEvent.objects.filter(user=u).update(created_at=F('created_at') - ago))"))
    assert int(done) > 0, done


def next_code(secret: str) -> str:
    """The code of the next 30-second step: later than any used so far (the enrolment's code
    is spent), and still inside the one-step window the server accepts, so no walk waits for
    the clock to move on."""
    return str(pyotp.TOTP(secret).at(time.time() + 30))


def codes_of(live: Live, username: str) -> list[str]:
    """New recovery codes for ``username``, made by the operator's shell as if the owner had
    saved them on paper (the walks start after that, with the paper in hand)."""
    out = shell(live, (
        "from relatch.accounts.models import User; "
        "from relatch.mfa.recovery_codes.services import generate_recovery_codes as g; "
        f"print(' '.join(g(user=User.objects.get(username={username!r}), request=None)))"))
    return out.split()


def end_request_wait(live: Live, username: str) -> None:
    """The recovery request's announced wait has run out; the housekeeping pass runs."""
    moved = shell(live, (
        "from datetime import timedelta; from django.utils import timezone; "
        "from relatch.recovery.models import RecoveryRequest as R; "
        "now = timezone.now(); "
        f"print(R.objects.filter(user__username={username!r}, state='in_waiting_period')"
        ".update(wait_ends_at=now - timedelta(minutes=1), "
        "wait_started_at=now - timedelta(days=8)))"))
    assert moved == "1", moved
    tick = live.server.relatch("recovery_tick")
    assert tick.returncode == 0, tick.stderr


def end_self_recovery_wait(live: Live, username: str) -> None:
    """Three days pass: the wait ends, and the app's last used code is days old (the replay
    guard remembers the last step used; in three days the app has moved far past it)."""
    moved = shell(live, (
        "from datetime import timedelta; from django.utils import timezone; "
        "from relatch.mfa.models import SelfServiceRecovery as S, TotpDevice as T; "
        "now = timezone.now(); "
        f"T.objects.filter(user__username={username!r}).update(last_used_step=0); "
        f"print(S.objects.filter(user__username={username!r}, state='waiting')"
        ".update(ends_at=now - timedelta(minutes=1), started_at=now - timedelta(days=4)))"))
    assert moved == "1", moved


def wait_for_state(live: Live, username: str, state: str) -> None:
    """The worker files a request and asks for its proofs in the background."""
    code = ("from relatch.recovery.models import RecoveryRequest as R; "
            f"print(R.objects.get(user__username={username!r}).state)")
    deadline = time.monotonic() + 60
    while (seen := shell(live, code)) != state and time.monotonic() < deadline:
        time.sleep(0.5)
    assert seen == state, seen


@pytest.mark.slow
def test_lost_phone_no_codes_with_password_and_mailbox(
    make_visitor, live: Live  # type: ignore[no-untyped-def]
) -> None:
    """The most common case: the app is gone, codes were never saved; the password and the
    mailbox are there. "I can't use any of these" makes a request that already counts the
    password, and the one code to the account's address proves the mailbox: two sources, an
    account without projects, so it completes by itself after the announced wait."""
    address, _ = owner_with_app(live, make_visitor(), "lena")
    walk = Walk(make_visitor())
    walk.visitor.goto("/account/login/")
    walk.sign_in("lena", PASSWORD)
    walk.visitor.see("Confirm it is you")
    walk.link("I can't use any of these")
    walk.visitor.see("Ask for recovery from here")
    walk.tick("l***@example.org")
    walk.type("What happened?", "My phone was stolen; I never saved the codes.")
    walk.tick("I agree to the code of conduct and will treat staff with respect.")
    walk.tick("I understand that review takes time, and that a waiting period may apply.")
    walk.press("Send me a code")
    walk.visitor.see("Enter the code")
    code = re.search(r"\b(\d{6})\b", walk.visitor.live.mail_text(address, "request code"))
    assert code
    walk.type("Code from the mail", code.group(1))
    walk.press("File my request")
    walk.visitor.see("Your request is filed")
    wait_for_state(live, "lena", "in_waiting_period")

    end_request_wait(live, "lena")
    walk.mailed_link(address, r"/account/reset/[^/]+/[^/]+/")
    walk.visitor.see("Choose a new password")
    walk.type("New password", NEW_PASSWORD)
    walk.type("New password again", NEW_PASSWORD)
    walk.press("Set the new password")
    walk.sign_in("lena", NEW_PASSWORD)
    walk.visitor.see(ACCOUNT)
    walk.expect_signed_in("lena")
    walk.expect_clicks("Lost phone or key, no saved codes; password and mailbox")


@pytest.mark.slow
def test_lost_phone_with_saved_codes(make_visitor, live: Live) -> None:  # type: ignore[no-untyped-def]
    """A saved recovery code signs in; on a new browser the mailed link confirms it, and the
    person makes new codes at once."""
    address, _ = owner_with_app(live, make_visitor(), "omar")
    codes = codes_of(live, "omar")
    walk = Walk(make_visitor())
    walk.visitor.goto("/account/login/")
    walk.sign_in("omar", PASSWORD)
    walk.visitor.see("Confirm it is you")
    walk.link(re.compile("Use a recovery code"))
    walk.visitor.see("Confirm it is you")
    walk.visitor.page.get_by_role("textbox", name="Recovery code").fill(codes[0])
    walk.press("Sign in with a recovery code")
    walk.visitor.see("Check your mail to finish signing in")
    walk.mailed_link(address, r"/account/login/confirm/")
    walk.visitor.see("Finish signing in")
    walk.press("Yes, sign me in")
    walk.visitor.see(re.compile("recovery code", re.IGNORECASE))
    walk.expect_signed_in("omar")
    walk.expect_clicks("Lost phone or key, saved codes")


@pytest.mark.slow
def test_lost_mailbox_with_password_and_app(make_visitor, live: Live) -> None:  # type: ignore[no-untyped-def]
    """The mailbox is gone, the app is not: the new-device mail cannot be read, so the
    check-your-mail page starts a self-service wait; after it, the same browser signs in."""
    _, secret = owner_with_app(live, make_visitor(), "nils")
    walk = Walk(make_visitor())
    walk.visitor.goto("/account/login/")
    walk.sign_in("nils", PASSWORD)
    walk.visitor.see("Confirm it is you")
    walk.type("Code from your authenticator app", next_code(secret))
    walk.press("Sign in with the app code")
    walk.visitor.see("Check your mail to finish signing in")
    walk.press("I no longer have access to my email")
    walk.visitor.see("Self-service recovery")

    end_self_recovery_wait(live, "nils")
    walk.visitor.goto("/account/login/")  # back later, in the same browser
    walk.sign_in("nils", PASSWORD)
    walk.visitor.see("Confirm it is you")
    walk.type("Code from your authenticator app", next_code(secret))
    walk.press("Sign in with the app code")
    walk.visitor.see("Email addresses")  # next: an address they can read
    walk.expect_signed_in("nils")
    walk.expect_clicks("Lost mailbox; password and a factor")


@pytest.mark.slow
def test_app_codes_rejected_for_clock_drift(make_visitor, live: Live) -> None:  # type: ignore[no-untyped-def]
    """The phone's clock is minutes off: the page says so instead of "wrong code", the person
    fixes the clock, and the next code signs in (a browser the account knows: no mail)."""
    browser = make_visitor()
    _, secret = owner_with_app(live, browser, "cora")
    walk = Walk(browser)
    walk.visitor.goto("/account/login/")
    walk.sign_in("cora", PASSWORD)
    walk.visitor.see("Confirm it is you")
    drifted = pyotp.TOTP(secret).at(time.time() - 4 * 60)
    walk.type("Code from your authenticator app", drifted)
    walk.press("Sign in with the app code")
    walk.visitor.see("Confirm it is you")
    expect(walk.visitor.page.get_by_role("main")).to_contain_text("clock may be off")
    walk.type("Code from your authenticator app", next_code(secret))
    walk.press("Sign in with the app code")
    walk.visitor.see(ACCOUNT)
    walk.expect_signed_in("cora")
    walk.expect_clicks("App codes rejected: the phone's clock is off")


@pytest.mark.slow
def test_address_mistyped_at_registration(visitor: Visitor) -> None:
    """Registered with a typo, the verification mail never came. Signing in again leads to the
    address page, which replaces the unverified address; its link verifies it."""
    visitor.goto("/account/register/")
    visitor.see("Create an account")
    visitor.fill_form(Username="tariq", Email_address="tariq@exmaple.org")
    visitor.page.get_by_label("Password", exact=True).fill(PASSWORD)
    visitor.page.get_by_label("Password again").fill(PASSWORD)
    visitor.press("Create the account")
    visitor.see("Check your mail")
    visitor.context.clear_cookies()  # a day later, another session

    walk = Walk(visitor)
    walk.visitor.goto("/account/login/")
    walk.sign_in("tariq", PASSWORD)
    walk.visitor.see(re.compile("Check your mail|Email addresses"))
    if walk.visitor.page.get_by_role("heading", level=1).inner_text() != "Email addresses":
        walk.link(re.compile("Mistyped|address page|Change the address", re.IGNORECASE))
        walk.visitor.see("Email addresses")
    walk.type("Email address", "tariq@example.org")
    walk.press("Replace the address")
    walk.visitor.see("Email addresses")
    expect(walk.visitor.page.get_by_role("main")).to_contain_text("tariq@example.org")
    walk.mailed_link("tariq@example.org", r"/account/emails/verify/")
    walk.visitor.see("Verify your address")
    walk.press("Verify tariq@example.org")
    walk.visitor.see("Email addresses")
    walk.expect_signed_in("tariq")
    walk.expect_clicks("Address mistyped or never verified")


@pytest.mark.slow
def test_forgot_the_username(visitor: Visitor, live: Live) -> None:
    """Only the address is remembered: "Can't sign in?" takes it, and the sign-in page does
    too."""
    live.create_user("yusuf", PASSWORD)
    walk = Walk(visitor)
    walk.visitor.goto("/account/login/")
    walk.visitor.see("Sign in")
    walk.link("Can't sign in?")
    walk.visitor.see("Can't sign in?")
    walk.type("Username or email address", "yusuf@example.org")
    walk.press("Next")
    walk.visitor.see("What do you still have?")
    walk.tick("My password")
    walk.tick("Access to an email address on the account")
    walk.press("Show me what to do")
    walk.visitor.see("Your way back in")
    region = walk.visitor.page.get_by_role("region", name="What to do")
    region.get_by_role("link", name="Sign in").click()
    walk.clicks += 1
    walk.visitor.see("Sign in")
    expect(walk.visitor.page.get_by_label("Username or email address")).to_have_value(
        "yusuf@example.org")
    walk.type("Password", PASSWORD)
    walk.press("Sign in")
    walk.visitor.see(ACCOUNT)
    walk.expect_signed_in("yusuf")
    walk.expect_clicks("Forgot the username")
