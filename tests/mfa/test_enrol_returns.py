"""Setting up a first factor finishes on the task a two-step wall stopped (issue 19): ``next``
goes from the wall through the two-step page, the saved-codes gate and the app or key form,
and is followed afterwards only when it is a path on this site (no open redirect)."""

from typing import Any
from urllib.parse import quote

import pytest
from django.urls import reverse

from relatch.accounts.models import User
from relatch.mfa.recovery_codes.services import generate_recovery_codes
from tests.conftest import CommittingClient, sign_in
from tests.mfa.soft_authenticator import SoftAuthenticator
from tests.mfa.test_totp import oathtool, page_secret, save_codes
from tests.mfa.test_webauthn import options_on

pytestmark = pytest.mark.django_db

OVERVIEW = reverse("mfa:overview")
SETUP = reverse("totp:setup")
CONFIRM = reverse("totp:confirm")
ADD_KEY = reverse("webauthn:add")
CODES_CONFIRM = reverse("recovery_codes:confirm")
TASK = "/manage/invitations/"
# (next asked for, where the set-up finishes): unsafe ones fall back to the factor's own page.
NEXTS = [
    (TASK, TASK),
    ("/account/tokens/new/", "/account/tokens/new/"),
    ("//evil.example/", None),
    ("https://evil.example/", None),
    ("/\\evil.example/", None),
]


@pytest.fixture
def browser(client: CommittingClient, user: User) -> CommittingClient:
    """Alice, signed in with her password only, freshly re-authenticated."""
    return sign_in(client, user)


def with_next(path: str, next_url: str) -> str:
    return f"{path}?next={quote(next_url, safe='')}"


@pytest.mark.parametrize(("asked", "kept"), NEXTS)
def test_the_two_step_page_carries_a_safe_next_to_the_set_up_links(browser, asked, kept):
    html = browser.get(with_next(OVERVIEW, asked)).content.decode()
    for path in (SETUP, ADD_KEY):
        link = with_next(path, kept) if kept else path
        assert f'href="{link}"' in html
    assert ("you go straight back" in " ".join(html.split())) == bool(kept)
    assert "evil.example" not in html


def test_the_saved_codes_gate_comes_back_with_next_then_the_app_finishes_on_it(browser, user):
    """The whole way: codes first (issue 3 §3), then the app, then the invitation."""
    response = browser.get(with_next(SETUP, TASK))
    assert response["Location"] == reverse("recovery_codes:manage")
    codes = generate_recovery_codes(request=None, user=user)
    back = browser.post(CODES_CONFIRM, {"code": codes[0]})
    assert back["Location"] == with_next(SETUP, TASK)
    page = browser.get(back["Location"])
    assert f'<input type="hidden" name="next" value="{TASK}">' in page.content.decode()
    done = browser.post(CONFIRM, {"code": oathtool(page_secret(page)), "next": TASK})
    assert done["Location"] == TASK


@pytest.mark.parametrize(("asked", "kept"), NEXTS)
def test_the_app_finishes_on_a_safe_next_only(browser, user, asked, kept):
    save_codes(user)
    page = browser.get(with_next(SETUP, asked))
    assert page.status_code == 200
    assert ('name="next"' in page.content.decode()) == bool(kept)
    done = browser.post(CONFIRM, {"code": oathtool(page_secret(page)), "next": asked})
    assert done.status_code == 302
    assert done["Location"] == (kept or SETUP)


@pytest.mark.parametrize(("asked", "kept"), NEXTS)
def test_a_security_key_finishes_on_a_safe_next_only(browser, user, asked, kept):
    save_codes(user)
    page = browser.get(with_next(ADD_KEY, asked))
    assert ('name="next"' in page.content.decode()) == bool(kept)
    answer = SoftAuthenticator().register(options_on(page))
    done = browser.post(ADD_KEY, {"label": "Blue key", "credential": answer, "next": asked})
    assert done.status_code == 302
    assert done["Location"] == (kept or reverse("webauthn:list"))


def test_the_key_form_sends_the_gate_back_with_next(browser: Any) -> None:
    assert browser.get(with_next(ADD_KEY, TASK))["Location"] == reverse("recovery_codes:manage")
    assert browser.session["relatch_recovery_codes_next"] == with_next(ADD_KEY, TASK)
