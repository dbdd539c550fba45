"""What a person does with second factors in the browser, as steps the MFA tests share.

Each step starts and ends on a page it audits (``Visitor.see``), and finds things the way a
person does: by headings, labels, button and link names.
"""

import re
import time

import pyotp
from playwright.sync_api import Locator, expect
from tests.browser.harness import Live, Visitor, totp_now

PASSWORD = "a calm and long passphrase"
REAUTH_SESSION_KEY = "relatch_reauth_at"  # relatch.accounts.reauth._SESSION_KEY
ACCOUNT = re.compile("Your account")


def sign_out(visitor: Visitor) -> None:
    """The Sign out button of the main navigation."""
    nav = visitor.page.get_by_role("navigation", name="Main")
    nav.get_by_role("button", name="Sign out").click()
    visitor.page.wait_for_load_state("load")
    visitor.audit()
    expect(visitor.page.get_by_role("status")).to_contain_text("You are signed out")


def expect_field_error(visitor: Visitor, field: Locator, text: str) -> None:
    """A refused field is marked invalid, has the keyboard, and names its error, which says
    ``text`` (so a screen reader reads the error with the field)."""
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_be_focused()
    described = (field.get_attribute("aria-describedby") or "").split()
    assert described, "the field names no description"
    expect(visitor.page.locator(f"#{described[-1]}")).to_contain_text(text)


def open_two_step_page(visitor: Visitor) -> None:
    """From the account page to the two-step sign-in page, by its link."""
    visitor.goto("/account/")
    visitor.see(ACCOUNT)
    visitor.page.get_by_role("link", name="Manage two-step sign-in").click()
    visitor.see("Two-step sign-in")


def save_recovery_codes(visitor: Visitor) -> list[str]:
    """On the recovery-codes page: make a set, read it once, and confirm one code back.

    Returns the codes as the page showed them. Ends wherever the product sends the person
    after confirming (back to the page that asked for codes first, or the codes page).
    """
    codes = make_recovery_codes(visitor)
    visitor.page.get_by_role("link", name="I saved them: continue").click()
    confirm_saved_codes(visitor, codes[-1])
    return codes


def make_recovery_codes(visitor: Visitor) -> list[str]:
    """On the recovery-codes page: make a set; ends on the page that shows it."""
    visitor.see("Recovery codes")
    visitor.press("Make recovery codes")
    visitor.see("Your new recovery codes")
    codes = [c.strip() for c in visitor.page.locator("#recovery-codes li").all_inner_texts()]
    assert len(codes) == 8, codes
    assert len(set(codes)) == len(codes), codes
    return codes


def confirm_saved_codes(visitor: Visitor, code: str) -> None:
    """The confirm page: one code typed back (it stays unused)."""
    visitor.see("Confirm you saved your recovery codes")
    visitor.fill_form(One_of_your_recovery_codes=code)
    visitor.press("Confirm")
    expect(visitor.page.get_by_role("status").first).to_contain_text("recovery codes are saved")


def read_totp_secret(visitor: Visitor) -> str:
    """The secret key the setup page prints for people who cannot scan the QR code."""
    term = visitor.page.locator("dt", has_text="Secret key")
    secret = term.locator("xpath=following-sibling::dd[1]")
    return secret.inner_text().replace(" ", "")


def wrong_totp_code(secret: str) -> str:
    """A well-formed code that no step within six minutes of now gives (so not merely late)."""
    totp = pyotp.TOTP(secret)
    now = time.time()
    near = {totp.at(now + 30 * steps) for steps in range(-12, 13)}
    return next(c for c in (f"{n:06d}" for n in range(0, 10**6, 7919)) if c not in near)


def enrol_authenticator_app(visitor: Visitor) -> tuple[str, str]:
    """On the setup page: read the secret, type a code from it; returns (secret, code used)."""
    visitor.see("Set up an authenticator app")
    qr = visitor.page.get_by_role("img", name=re.compile("QR code"))
    expect(qr).to_be_visible()
    assert qr.evaluate("image => image.naturalWidth") > 0, "the QR code did not load"
    secret = read_totp_secret(visitor)
    code = totp_now(secret)
    visitor.fill_form(Code_from_the_app=code)
    visitor.press("Confirm and turn on")
    visitor.see("Authenticator app")
    expect(visitor.page.get_by_role("status").first).to_contain_text("Authenticator app added")
    return secret, code


def confirm_new_device(visitor: Visitor, address: str) -> None:
    """The check-your-mail page, then the mailed link opened in the same browser."""
    visitor.see("Check your mail to finish signing in")
    visitor.page.goto(visitor.live.link(address, r"/account/login/confirm/"))
    visitor.see("Finish signing in")
    visitor.press("Yes, sign me in")


def reauthenticate_with_password(visitor: Visitor, password: str = PASSWORD) -> None:
    """The page that asks for the password again before a sensitive change."""
    visitor.see("Confirm your password")
    visitor.page.get_by_label("Password", exact=True).fill(password)
    visitor.press("Confirm")


def let_reauthentication_lapse(live: Live, visitor: Visitor) -> None:
    """Move this browser's last password proof an hour back, as if the person had stepped away.

    Waiting out the real ten minutes (RELATCH_REAUTH_MAX_AGE) is too slow for a test, and the
    live server's settings are shared by the module; the server's own session store is edited
    through its management shell, the page flow itself is untouched.
    """
    cookie = next(c for c in visitor.context.cookies() if c["name"].endswith("relatch-session"))
    code = (
        "from django.contrib.sessions.backends.db import SessionStore; "
        f"s = SessionStore(session_key={cookie['value']!r}); "
        f"s[{REAUTH_SESSION_KEY!r}] = int(s[{REAUTH_SESSION_KEY!r}]) - 3600; s.save()"
    )
    done = live.server.relatch("shell", "-c", code)
    assert done.returncode == 0, done.stderr


def add_security_key(visitor: Visitor, name: str) -> None:
    """On the add page: name the key and press the button; the browser's key answers."""
    visitor.see("Add a security key")
    visitor.fill_form(Name_of_the_key=name)
    visitor.press("Add the security key")
    visitor.see("Security keys")


def use_another_method(visitor: Visitor, name: str) -> None:
    """On the second step, which shows one method: the link to another of the account's."""
    visitor.page.get_by_role("link", name=re.compile(re.escape(name))).click()
    visitor.see("Confirm it is you")


def use_security_key(visitor: Visitor) -> None:
    """On a page that offers the account's factors: the security key's button."""
    visitor.page.get_by_role("button", name="Use your security key").click()
    visitor.page.wait_for_load_state("load")


def move_keys(source: Visitor, source_key: str, target: Visitor) -> str:
    """The passkeys of ``source``'s virtual key, put in a new virtual key of ``target``: the
    same physical key plugged into another computer. The new key's id."""
    from tests.browser.harness import virtual_authenticator

    target_key = virtual_authenticator(target)
    found = source.cdp_sessions[-1].send("WebAuthn.getCredentials", {"authenticatorId": source_key})
    assert found["credentials"], "the security key holds no credential"
    for credential in found["credentials"]:
        target.cdp_sessions[-1].send(
            "WebAuthn.addCredential", {"authenticatorId": target_key, "credential": credential}
        )
    return target_key
