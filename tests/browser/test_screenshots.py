"""Screenshots of the main pages, for the README (issue 6 §4).

``./dev screenshots`` runs this file with RELATCH_SCREENSHOTS_DIR=docs/screenshots; in the suite
it renders into a temporary directory, so the walk that makes the pictures cannot rot. Each page
is reached the way a person reaches it (no page is faked), is audited like every browser test's
page, and the picture must be a real, non-blank PNG of the expected width.
"""

import os
import re
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import expect
from tests.browser.harness import PHONE, Live, Visitor, totp_now
from tests.browser.mfa_steps import (
    confirm_saved_codes,
    enrol_authenticator_app,
    make_recovery_codes,
    open_two_step_page,
    sign_out,
)
from tests.browser.recovery_steps import file_request, open_status, staff_member

PASSWORD = "a calm and long passphrase"
PICTURES = {
    "sign-in": "Sign in",
    "account-security": "Two-step sign-in, set up with an app and recovery codes",
    "recovery-codes": "New recovery codes, shown once",
    "second-step": "The second step: one method, the others a click away",
    "devices": "Sessions and devices: one list",
    "cant-sign-in": "Can't sign in? The first question",
    "request-status": "A recovery request's status page (from the link in the mail)",
    "request-status-phone": "The same status page on a phone",
    "desk-queue": "The staff recovery desk: the queue",
    "desk-detail": "The staff recovery desk: one request",
}


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    chosen = os.environ.get("RELATCH_SCREENSHOTS_DIR")
    path = Path(chosen) if chosen else tmp_path
    path.mkdir(parents=True, exist_ok=True)
    return path


def shoot(visitor: Visitor, out: Path, name: str) -> None:
    assert name in PICTURES, name
    visitor.page.screenshot(path=out / f"{name}.png", full_page=True, animations="disabled")


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def test_the_main_pages_render_into_screenshots(
    make_visitor: Callable[[], Visitor], live: Live, out_dir: Path
) -> None:
    _maintainer_pages(make_visitor(), live, out_dir)
    ids = [_locked_out_pages(make_visitor(), out_dir)]
    ids += [_another_request(make_visitor(), name) for name in ("ines", "someone-else")]
    _desk_pages(make_visitor(), live, out_dir, ids[0])

    for name in PICTURES:
        width, height = png_size(out_dir / f"{name}.png")
        assert width == (PHONE["width"] if name.endswith("-phone") else 1200), name
        assert height >= 400 and (out_dir / f"{name}.png").stat().st_size > 15_000, name


def _maintainer_pages(visitor: Visitor, live: Live, out: Path) -> None:
    live.create_user("alice", PASSWORD)
    visitor.goto("/account/login/")
    visitor.see("Sign in")
    shoot(visitor, out, "sign-in")
    visitor.sign_in("alice", PASSWORD)
    visitor.see(re.compile("Your account"))
    open_two_step_page(visitor)
    visitor.page.get_by_role("link", name="Set up an authenticator app").click()
    codes = make_recovery_codes(visitor)  # the product asks for saved codes first
    shoot(visitor, out, "recovery-codes")
    visitor.page.get_by_role("link", name="I saved them: continue").click()
    confirm_saved_codes(visitor, codes[-1])
    secret, used = enrol_authenticator_app(visitor)
    open_two_step_page(visitor)
    shoot(visitor, out, "account-security")
    _second_step_and_devices(visitor, out, secret, used)


def _second_step_and_devices(visitor: Visitor, out: Path, secret: str, used: str) -> None:
    sign_out(visitor)
    visitor.sign_in("alice", PASSWORD)
    visitor.see("Confirm it is you")
    shoot(visitor, out, "second-step")
    visitor.page.get_by_label("Code from your authenticator app").fill(totp_now(secret, after=used))
    visitor.press("Sign in with the app code")
    visitor.see(re.compile("Your account"))
    visitor.goto("/account/sessions/")
    visitor.see("Sessions and devices")
    shoot(visitor, out, "devices")


def _locked_out_pages(visitor: Visitor, out: Path) -> str:
    visitor.live.create_user("rosa", "rosa's passphrase from years ago")
    visitor.goto("/account/login/")
    visitor.see("Sign in")
    visitor.page.get_by_role("link", name="Can't sign in?").click()
    visitor.see("Can't sign in?")
    shoot(visitor, out, "cant-sign-in")
    _answer_and_file(visitor, "rosa", "rosa.new@example.net")
    return _status_pages(visitor, out)


def _answer_and_file(visitor: Visitor, username: str, contact: str) -> str:
    visitor.fill_form(Username_or_email_address=username)
    visitor.press("Next")
    visitor.see("What do you still have?")
    answers = visitor.page.get_by_role("group", name="What do you still have?")
    answers.get_by_label("My password", exact=True).check()
    visitor.press("Show me what to do")
    visitor.see("Your way back in")
    return file_request(visitor, username=username, contact=contact, still_has=("My password",),
                        what_happened="My phone was stolen, and my mail app with it.")


def _status_pages(visitor: Visitor, out: Path) -> str:
    status_url = visitor.live.link("rosa.new@example.net", r"/recovery/request/status/")
    open_status(visitor, status_url)
    shoot(visitor, out, "request-status")
    visitor.page.set_viewport_size(PHONE)
    shoot(visitor, out, "request-status-phone")
    visitor.page.set_viewport_size({"width": 1200, "height": 900})
    return visitor.page.locator("dl.facts dt:text-is('Request') + dd").inner_text()


def _another_request(visitor: Visitor, username: str) -> str:
    """Other requests, so the queue looks like a queue (one for a username that does not exist)."""
    if username != "someone-else":
        visitor.live.create_user(username, PASSWORD)
    visitor.goto("/recovery/request/")
    visitor.see("Can't sign in?")
    _answer_and_file(visitor, username, f"{username}.contact@example.net")
    return username


def _desk_pages(visitor: Visitor, live: Live, out: Path, public_id: str) -> None:
    staff_member(live, visitor, "dana", "the desk is not for everyone")
    visitor.goto("/desk/")
    visitor.see("Recovery desk")
    expect(visitor.page.get_by_role("link", name=public_id)).to_be_visible()
    shoot(visitor, out, "desk-queue")
    visitor.page.get_by_role("link", name=public_id).click()
    visitor.see(f"Recovery request {public_id}")
    shoot(visitor, out, "desk-detail")
