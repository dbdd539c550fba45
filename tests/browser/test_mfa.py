"""Second factors in Chromium: an authenticator app, a security key (and passkey), recovery codes.

Each test starts from an account with a password only, sets a factor up from the two-step
sign-in page the way a person would (recovery codes first, as the product asks), and signs in
with it again. ASVS 6.5 (general MFA), 6.6 (out-of-band: the new-device mail), 7.5.1 (re-auth);
NIST SP 800-63B-4 N2 (recovery codes), N22 (each code once).
"""

import re
from collections.abc import Callable

from playwright.sync_api import expect
from tests.browser.harness import Live, Visitor, totp_now, virtual_authenticator
from tests.browser.mfa_steps import (
    ACCOUNT,
    PASSWORD,
    add_security_key,
    confirm_new_device,
    confirm_saved_codes,
    enrol_authenticator_app,
    expect_field_error,
    let_reauthentication_lapse,
    make_recovery_codes,
    move_keys,
    open_two_step_page,
    read_totp_secret,
    reauthenticate_with_password,
    save_recovery_codes,
    sign_out,
    use_another_method,
    use_security_key,
    wrong_totp_code,
)


def test_an_authenticator_app_is_set_up_then_asked_for_at_every_sign_in(
    make_visitor: Callable[[], Visitor], live: Live
) -> None:
    address = live.create_user("tamsin", PASSWORD)
    laptop = make_visitor()
    laptop.sign_in("tamsin", PASSWORD)
    laptop.see(ACCOUNT)
    open_two_step_page(laptop)
    laptop.page.get_by_role("link", name="Set up an authenticator app").click()
    # A first second factor waits for saved recovery codes, then the person comes back here.
    expect(laptop.page.get_by_role("status")).to_contain_text("Save recovery codes first")
    save_recovery_codes(laptop)
    secret, enrolled_with = enrol_authenticator_app(laptop)

    sign_out(laptop)
    laptop.sign_in("tamsin", PASSWORD)
    laptop.see("Confirm it is you")
    code_field = laptop.page.get_by_label("Code from your authenticator app")
    code_field.fill(wrong_totp_code(secret))
    laptop.press("Sign in with the app code")
    laptop.see("Confirm it is you")
    expect_field_error(laptop, code_field, "That code is not right")

    signed_in_with = totp_now(secret, after=enrolled_with)  # each code is accepted once
    code_field.fill(signed_in_with)
    laptop.press("Sign in with the app code")
    laptop.see(ACCOUNT)

    # Another browser: the right code is not enough until the mailed link is opened there.
    phone = make_visitor()
    phone.sign_in("tamsin", PASSWORD)
    phone.see("Confirm it is you")
    phone.fill_form(Code_from_your_authenticator_app=totp_now(secret, after=signed_in_with))
    phone.press("Sign in with the app code")
    confirm_new_device(phone, address)
    phone.see(ACCOUNT)
    expect(phone.page.get_by_role("navigation", name="Main")).to_contain_text("tamsin")


def test_a_security_key_is_registered_then_signs_in_and_as_a_passkey_alone(
    make_visitor: Callable[[], Visitor], live: Live
) -> None:
    live.create_user("kofi", PASSWORD)
    laptop = make_visitor()
    key = virtual_authenticator(laptop)
    laptop.sign_in("kofi", PASSWORD)
    laptop.see(ACCOUNT)
    open_two_step_page(laptop)
    laptop.page.get_by_role("link", name="Add a security key").click()
    save_recovery_codes(laptop)
    add_security_key(laptop, "blue key")
    expect(laptop.page.get_by_role("status").first).to_contain_text(
        "Added the security key “blue key”. It can also sign you in without a password."
    )
    row = laptop.page.get_by_role("row").filter(has_text="blue key")
    expect(row).to_contain_text("Passkey")

    sign_out(laptop)
    laptop.sign_in("kofi", PASSWORD)
    laptop.see("Confirm it is you")
    # The only factor besides the codes is the key: no app code field is offered.
    expect(laptop.page.get_by_label("Code from your authenticator app")).to_have_count(0)
    use_security_key(laptop)
    laptop.see(ACCOUNT)

    # Later, renaming the key asks for the password and a factor again (the key itself).
    let_reauthentication_lapse(live, laptop)
    laptop.goto("/account/two-factor/keys/")
    laptop.see("Security keys")
    laptop.page.get_by_label("New name for blue key").fill("key on my keyring")
    laptop.press("Rename blue key")
    expect(laptop.page.get_by_role("status").first).to_contain_text("send the form again")
    reauthenticate_with_password(laptop)
    laptop.see("Confirm it is you")
    use_security_key(laptop)
    laptop.see("Security keys")
    laptop.page.get_by_label("New name for blue key").fill("key on my keyring")
    laptop.press("Rename blue key")
    laptop.see("Security keys")
    expect(laptop.page.get_by_role("status").first).to_contain_text("now named “key on my keyring”")

    # The same key on another computer: a passkey alone signs in, with no mailed link.
    desktop = make_visitor()
    move_keys(laptop, key, desktop)
    desktop.goto("/account/login/")
    desktop.see("Sign in")
    desktop.page.get_by_role("link", name="Sign in with a passkey instead").click()
    desktop.see("Sign in with a passkey")
    desktop.press("Use my passkey")
    desktop.see(ACCOUNT)
    expect(desktop.page.get_by_role("navigation", name="Main")).to_contain_text("kofi")
    assert not [s for s in live.subjects("kofi@example.org") if "new browser" in s]


def test_recovery_codes_are_shown_once_and_each_signs_in_once(
    make_visitor: Callable[[], Visitor], live: Live
) -> None:
    address = live.create_user("rosa", PASSWORD)
    laptop = make_visitor()
    virtual_authenticator(laptop)
    laptop.sign_in("rosa", PASSWORD)
    laptop.see(ACCOUNT)
    open_two_step_page(laptop)
    laptop.page.get_by_role("link", name="Make recovery codes").click()
    codes = make_recovery_codes(laptop)
    laptop.page.reload()
    laptop.see("These codes are no longer shown")
    expect(laptop.page.get_by_role("main")).not_to_contain_text(codes[0])
    laptop.page.get_by_role("link", name="confirm by entering one").click()
    confirm_saved_codes(laptop, codes[0])
    laptop.see("Recovery codes")
    expect(laptop.page.get_by_role("main")).to_contain_text("8 of 8")
    # Codes only matter once there is a second factor to lose: a security key here.
    laptop.page.get_by_role("link", name="Back to your account").click()
    laptop.see(ACCOUNT)
    open_two_step_page(laptop)
    laptop.page.get_by_role("link", name="Add a security key").click()
    add_security_key(laptop, "only key")

    # The key stays home; a fresh browser gets in with a code and the mailed link.
    phone = make_visitor()
    phone.sign_in("rosa", PASSWORD)
    phone.see("Confirm it is you")
    use_another_method(phone, "Use a recovery code")  # the key's form comes first
    phone.page.get_by_role("textbox", name="Recovery code").fill(codes[3])
    phone.press("Sign in with a recovery code")
    confirm_new_device(phone, address)
    phone.see("You used a recovery code: make a new set now")
    expect(phone.page.get_by_role("main")).to_contain_text("You have 7 unused codes left.")

    sign_out(phone)
    phone.sign_in("rosa", PASSWORD)
    phone.see("Confirm it is you")
    use_another_method(phone, "Use a recovery code")  # a code is never the remembered method
    code_field = phone.page.get_by_role("textbox", name="Recovery code")
    code_field.fill(codes[3])
    phone.press("Sign in with a recovery code")
    phone.see("Confirm it is you")
    expect_field_error(phone, code_field, "not one of your unused recovery codes")
    expect(code_field).to_have_value("")  # a code typed is never written back into the page

    # Refused as used, not because of the browser: another unused code still works here.
    code_field.fill(codes[4])
    phone.press("Sign in with a recovery code")
    phone.see("You used a recovery code: make a new set now")
    expect(phone.page.get_by_role("main")).to_contain_text("You have 6 unused codes left.")


def test_an_invited_maintainer_sets_up_an_app_and_lands_on_the_invitation(
    make_visitor: Callable[[], Visitor], live: Live
) -> None:
    """Issue 19. The invitation mail says a factor comes first and links to setting one up;
    after the saved codes and the app, the invitee is back on the invitation. Signing in again
    shows the app's form alone, with the keyboard in its code field."""
    live.create_user("olu", PASSWORD)
    address = live.create_user("ines", PASSWORD)
    invite_in_shell(live, owner="olu", project="tidy-tables", invitee="ines")
    assert "Accepting needs two-step sign-in first" in live.mail_text(address, "invited you")
    visitor = make_visitor()
    visitor.page.goto(live.link(address, r"/account/two-factor/\?next="))
    visitor.see("Sign in")
    visitor.page.get_by_label("Username or email").fill("ines")
    visitor.page.get_by_label("Password", exact=True).fill(PASSWORD)
    visitor.press("Sign in")
    visitor.see("Two-step sign-in")
    visitor.page.get_by_role("link", name="Set up an authenticator app").click()
    save_recovery_codes(visitor)
    visitor.see("Set up an authenticator app")
    secret = read_totp_secret(visitor)
    enrolled_with = totp_now(secret)
    visitor.fill_form(Code_from_the_app=enrolled_with)
    visitor.press("Confirm and turn on")
    visitor.see("Invitations to projects")
    expect(visitor.page.get_by_role("status").first).to_contain_text("Authenticator app added")
    expect(visitor.page.get_by_role("main")).to_contain_text("tidy-tables")

    sign_out(visitor)
    visitor.sign_in("ines", PASSWORD)
    visitor.see("Confirm it is you")
    expect(visitor.page.get_by_label("Code from your authenticator app")).to_be_focused()
    for other in ("Use your security key", "Sign in with a recovery code"):
        expect(visitor.page.get_by_role("button", name=other)).to_have_count(0)
    expect(visitor.page.get_by_role("link", name=re.compile("Use a recovery code"))).to_be_visible()
    visitor.page.keyboard.type(totp_now(secret, after=enrolled_with))
    visitor.press("Sign in with the app code")
    visitor.see(ACCOUNT)


def invite_in_shell(live: Live, *, owner: str, project: str, invitee: str) -> None:
    """``owner``'s new project and its invitation to ``invitee``, through the invite service
    (as the project page's form does), so the real invitation mail is sent."""
    code = (
        "from relatch.accounts.models import User; "
        "from relatch.index.models import Project, Role; "
        "from relatch.index.names import normalize_project_name; "
        "from relatch.index.manage.services import invite; "
        f"o = User.objects.get(username={owner!r}); "
        f"p = Project.objects.create(name={project!r}, "
        f"normalized_name=normalize_project_name({project!r})); "
        "Role.objects.create(project=p, user=o, kind='owner'); "
        f"invite(request=None, inviter=o, project=p, username={invitee!r}, kind='maintainer')"
    )
    done = live.server.relatch("shell", "-c", code)
    assert done.returncode == 0, done.stderr
