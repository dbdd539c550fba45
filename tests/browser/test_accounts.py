"""Registration, verification through the mail, errors a person can fix, and devices, in Chromium.

ASVS 6.2 (passwords), 6.3 (authentication), 7.4 (sessions a person can see and end).
"""

import re

from playwright.sync_api import expect
from tests.browser.harness import Visitor

PASSWORD = "a calm and long passphrase"


def test_register_verify_through_the_mail_and_sign_in(visitor: Visitor) -> None:
    visitor.goto("/")
    visitor.audit()
    visitor.page.get_by_role("link", name="Register").first.click()
    visitor.see("Create an account")
    visitor.fill_form(Username="maya", Email_address="maya@example.org")
    visitor.page.get_by_label("Password", exact=True).fill(PASSWORD)
    visitor.page.get_by_label("Password again").fill(PASSWORD)
    visitor.press("Create the account")
    visitor.see("Check your mail")  # signed in at once, behind the unverified wall
    main = visitor.page.get_by_role("main")
    expect(main).to_contain_text("Verify maya@example.org to use your account")
    expect(visitor.page.get_by_role("navigation", name="Main")).to_contain_text("maya")

    visitor.page.goto(visitor.live.link("maya@example.org", r"/account/emails/verify/"))
    visitor.see("Verify your address")
    visitor.press("Verify maya@example.org")
    visitor.see("Email addresses")
    expect(visitor.page.get_by_role("status").first).to_contain_text("is verified")

    visitor.press("Sign out")
    visitor.audit()
    visitor.goto("/account/login/")
    visitor.see("Sign in")
    visitor.page.get_by_label("Username or email address").fill("maya@example.org")
    visitor.page.get_by_label("Password", exact=True).fill(PASSWORD)
    visitor.press("Sign in")
    visitor.see(re.compile("Your account"))
    expect(visitor.page.get_by_role("navigation", name="Main")).to_contain_text("maya")


def test_errors_are_next_to_their_field_and_the_first_one_has_focus(visitor: Visitor) -> None:
    visitor.goto("/account/register/")
    visitor.see("Create an account")
    visitor.fill_form(Username="ok-name", Email_address="not an address")
    visitor.page.get_by_label("Password", exact=True).fill("short")
    visitor.page.get_by_label("Password again").fill("short")
    visitor.press("Create the account")
    visitor.see("Create an account")

    email = visitor.page.get_by_label("Email address")
    expect(email).to_be_focused()
    expect(email).to_have_attribute("aria-invalid", "true")
    described = email.get_attribute("aria-describedby") or ""
    error = visitor.page.locator(f"#{described.split()[-1]}")
    expect(error).to_contain_text("valid email address")
    expect(visitor.page.get_by_label("Username")).to_have_value("ok-name")


def test_a_person_ends_a_session_on_another_device(make_visitor, live) -> None:  # type: ignore[no-untyped-def]
    live.create_user("noor", PASSWORD)
    laptop, phone = make_visitor(), make_visitor()
    for device in (laptop, phone):
        device.sign_in("noor", PASSWORD)
        device.see(re.compile("Your account"))

    laptop.goto("/account/sessions/")
    laptop.see("Sessions and devices")
    entries = laptop.page.get_by_role("main").get_by_role("region")
    expect(entries).to_have_count(2)
    expect(entries.filter(has_text="This device")).to_have_count(1)
    # Both are the same browser on the same system: the laptop names the phone to tell them apart.
    phone_entry = entries.filter(has_not_text="This device")
    expect(phone_entry).to_contain_text("Password only")
    phone_entry.get_by_text("Rename").click()
    phone_entry.get_by_label("Name").fill("Noor's phone")
    laptop.press("Save the name")
    laptop.see("Sessions and devices")
    expect(laptop.page.get_by_role("heading", name="Noor's phone")).to_have_count(1)
    laptop.page.get_by_role("button", name="End Noor's phone").click()
    laptop.see("Sessions and devices")
    expect(laptop.page.get_by_role("status")).to_contain_text("Device ended")
    expect(entries).to_have_count(1)

    phone.goto("/account/")
    phone.see("Sign in")
