"""Passkeys offered on the first sign-in page, among the username field's suggestions
(WebAuthn conditional mediation; issue 19). NIST N32: a passkey that verified its user signs
in alone; ASVS 6.6.2: its challenge is single-use and kept in the session that asked.

Chromium's virtual authenticator stands in for the computer's own passkey store ("internal"
transport: with only a USB key, Chromium says conditional mediation is unavailable, as a
browser with no passkey store of its own may). In its virtual environment Chromium hands a
conditional request straight to the authenticator, which with automatic presence answers at
once: the person's choosing the passkey from the suggestions. So that the sign-in page can be
seen and audited first, the test holds the page's request for options (a slow network) until
the person has clicked into the username field.
"""

import re
from collections.abc import Callable

from playwright.sync_api import Route, expect
from tests.browser.harness import Live, Visitor, virtual_authenticator
from tests.browser.mfa_steps import (
    ACCOUNT,
    PASSWORD,
    add_security_key,
    open_two_step_page,
    save_recovery_codes,
    sign_out,
)

OPTIONS = "**/account/login/passkey/options/"


def register_passkey(visitor: Visitor, username: str) -> None:
    visitor.sign_in(username, PASSWORD)
    visitor.see(ACCOUNT)
    open_two_step_page(visitor)
    visitor.page.get_by_role("link", name="Add a security key").click()
    save_recovery_codes(visitor)
    add_security_key(visitor, "this laptop")
    expect(visitor.page.get_by_role("status").first).to_contain_text(
        "It can also sign you in without a password."
    )


def wait_for_held(visitor: Visitor, held: list[Route]) -> None:
    """Until the page's request for passkey options is held (Playwright hands it over while
    the test waits on the page)."""
    for _ in range(100):
        if held:
            return
        visitor.page.wait_for_timeout(100)
    raise AssertionError("the sign-in page asked for no passkey options")


def test_a_passkey_chosen_in_the_username_field_signs_in(
    make_visitor: Callable[[], Visitor], live: Live
) -> None:
    address = live.create_user("noor", PASSWORD)
    laptop = make_visitor()
    virtual_authenticator(laptop, transport="internal")
    register_passkey(laptop, "noor")
    sign_out(laptop)

    held: list[Route] = []
    laptop.page.route(OPTIONS, lambda route: held.append(route))
    laptop.goto("/account/login/")
    laptop.see("Sign in")
    username = laptop.page.get_by_label("Username or email address")
    expect(username).to_have_attribute("autocomplete", "username webauthn")
    expect(laptop.page.get_by_role("link", name="Sign in with a passkey instead")).to_be_visible()
    username.click()
    wait_for_held(laptop, held)
    assert held[0].request.method == "POST"
    with laptop.page.expect_navigation(url=re.compile(r"/account/$")):
        held[0].continue_()
    laptop.see(ACCOUNT)
    expect(laptop.page.get_by_role("navigation", name="Main")).to_contain_text("noor")
    # Phishing-resistant and verified: no "new browser" mail, no password typed.
    assert not [s for s in live.subjects(address) if "new browser" in s]
