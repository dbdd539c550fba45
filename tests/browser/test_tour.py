"""A tour of the pages the journeys do not reach, each audited like theirs (issue 6 §1, §3).

The walks in the other files prove the flows; this one proves the rest of the interface holds
together: every page has one main heading, passes axe-core, fits a phone, and the account pages
mark where the person is in the account navigation.
"""

import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import expect
from tests.browser.harness import Live, Visitor
from tests.index.dists import build_wheel

PASSWORD = "a calm and long passphrase"
PUBLIC = [
    ("/", "Relatch"),
    ("/account/register/", "Create an account"),
    ("/account/reset/", re.compile("password", re.IGNORECASE)),
    ("/recovery/request/", "Can't sign in?"),
    ("/conduct/", "Code of conduct"),
    ("/project/tour-pkg/", re.compile("tour-pkg")),
    ("/user/tess/", re.compile("tess")),
]
ACCOUNT = [
    ("/account/", "Your account", "Overview"),
    ("/account/emails/", re.compile("address", re.IGNORECASE), "Email addresses"),
    ("/account/password/", re.compile("password", re.IGNORECASE), "Password"),
    ("/account/two-factor/", "Two-step sign-in", "Two-step sign-in"),
    ("/account/sessions/", "Sessions and devices", "Sessions and devices"),
    ("/account/history/", "Security history", "Security history"),
    ("/account/tokens/", re.compile("token", re.IGNORECASE), "API tokens"),
    # Without a second factor the projects area asks for one first (DESIGN: publishing needs 2FA).
    ("/manage/projects/", "Two-step sign-in needed", "Your projects"),
]


def _owner_with_a_project(live: Live, tmp_path: Path) -> None:
    live.create_user("tess", PASSWORD)
    wheel = build_wheel("tour-pkg", "1.0", description="# Tour\n\nA project for the tour.")
    path = tmp_path / wheel.filename
    path.write_bytes(wheel.content)
    done = live.server.relatch("index_import_file", str(path), "--owner", "tess")
    assert done.returncode == 0, done.stderr


def test_every_public_page_passes_the_audit(
    make_visitor: Callable[[], Visitor], live: Live, tmp_path: Path
) -> None:
    _owner_with_a_project(live, tmp_path)
    visitor = make_visitor()
    for path, heading in PUBLIC:
        visitor.goto(path)
        visitor.see(heading)
    response = visitor.goto("/no-such-page/")
    assert response is not None and response.status == 404
    visitor.see(re.compile("not found", re.IGNORECASE))


def test_every_account_page_passes_the_audit_and_marks_its_place(visitor: Visitor) -> None:
    visitor.live.create_user("uma", PASSWORD)
    visitor.sign_in("uma", PASSWORD)
    visitor.see("Your account")
    nav = visitor.page.get_by_role("navigation", name="Account")
    for path, heading, item in ACCOUNT:
        visitor.goto(path)
        visitor.see(heading)
        expect(nav.locator('[aria-current="page"]')).to_have_text(item)
