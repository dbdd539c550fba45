"""The two-step sign-in page and the factor items of the account check-up (issue 3 §3, §7)."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from relatch.accounts.overview.checkup import security_checkup
from relatch.audit.models import SecurityEvent
from relatch.mfa.checkup import phishing_resistant_check, recovery_codes_check, two_step_check
from relatch.mfa.models import RecoveryCode, TotpDevice, WebAuthnCredential
from relatch.mfa.queries import factor_summary
from relatch.web.templatetags.times import relative_words
from tests.conftest import sign_in
from tests.mfa.factor_rows import add_app, add_codes, add_key

pytestmark = pytest.mark.django_db

PAGE = reverse("mfa:overview")
ACCOUNT = reverse("account:overview")
MANAGE_CODES = reverse("recovery_codes:manage")
CONFIRM_CODES = reverse("recovery_codes:confirm")
ADDED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
USED = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
USED_LATER = datetime(2026, 4, 5, 6, 7, 8, tzinfo=UTC)


def shown(at: datetime) -> str:
    """What the reader sees of a moment: "3 months 2 days ago" (the exact time is on hover)."""
    return relative_words(at, now=timezone.now())


def exact(at: datetime) -> str:
    """The exact moment, in the title of the page's <time> element."""
    return f'title="{at:%Y-%m-%d %H:%M:%S} UTC"'


def readable(html: str) -> str:
    """The page as a reader sees it: tags dropped, whitespace collapsed (links stay checkable
    through their ``href`` in the raw page)."""
    text = " ".join(re.sub(r"<[^>]+>", " ", html).split())
    return text.replace(" ,", ",").replace(" )", ")").replace("( ", "(")


def page_of(client: Client) -> str:
    response = client.get(PAGE)
    assert response.status_code == 200
    html = response.content.decode()
    return html + "\n" + readable(html)


# --- the two-step sign-in page -------------------------------------------------------------


def test_an_account_with_nothing_set_up_is_told_what_is_missing_and_why(signed_in):
    """NIST N12: the page encourages a second factor and explains each one."""
    page = page_of(signed_in)

    assert "Off Right now your password alone signs you in" in page
    assert "Not set up." in page
    assert "No security key registered." in page
    assert "You have no recovery codes." in page
    # Why each matters, in plain words.
    assert "someone with only your password cannot sign in" in page
    assert "a look-alike page cannot" in page
    assert "get you back in, without waiting for anyone" in page
    for name in ["totp:setup", "webauthn:add", "recovery_codes:manage", "sessions:list"]:
        assert f'href="{reverse(name)}"' in page
    assert "Set up an authenticator app" in page
    assert "Add a security key" in page and "Make recovery codes" in page


def test_an_app_shows_when_it_was_added_and_last_used(signed_in, user):
    add_app(user, created_at=ADDED, last_used_at=USED)

    page = page_of(signed_in)

    assert "On Signing in needs your password and a second factor" in page
    assert "Set up" in page
    assert shown(ADDED) in page and shown(USED) in page
    assert exact(ADDED) in page and exact(USED) in page
    assert "Manage or remove the authenticator app" in page
    assert f'href="{reverse("totp:setup")}"' in page
    assert "Not set up." not in page


def test_an_app_never_used_says_so(signed_in, user):
    add_app(user, created_at=ADDED)
    page = page_of(signed_in)
    assert "Last used Never" in page


def test_each_security_key_is_listed_with_label_added_and_last_used(signed_in, user):
    add_key(user, "Desk key", created_at=ADDED, last_used_at=USED)
    add_key(user, "Phone", created_at=ADDED + timedelta(days=1), discoverable=True)

    page = page_of(signed_in)

    assert page.index("Desk key") < page.index("Phone")  # in the order they were added
    assert shown(ADDED) in page and shown(USED) in page
    assert "Passkey" in page  # the discoverable one
    assert f'href="{reverse("webauthn:list")}"' in page
    assert "Phone Passkey " + shown(ADDED + timedelta(days=1)) + " Never" in page
    assert "No security key registered." not in page


def test_a_key_label_cannot_inject_markup(signed_in, user):
    add_key(user, '<img src=x onerror="alert(1)">')
    page = page_of(signed_in)
    assert "<img src=x" not in page
    assert "&lt;img src=x" in page


@pytest.mark.parametrize(
    ("used", "prompt"),
    [
        (6, "Only 2 recovery codes left."),
        (7, "Only 1 recovery code left."),
        (8, "All your recovery codes are used."),
    ],
)
def test_two_or_fewer_codes_left_asks_for_a_new_set(signed_in, user, used, prompt):
    """Issue 3 §3 and NIST N2: when two or fewer codes remain, the page asks for a new set."""
    add_codes(user, used=used)

    page = page_of(signed_in)

    assert prompt in page
    assert "Make a new set now" in page
    assert f'class="button" href="{MANAGE_CODES}"' in page
    assert f"{8 - used} of 8" in page


def test_three_codes_left_is_not_yet_a_prompt(signed_in, user):
    add_codes(user, used=5, created_at=ADDED)

    page = page_of(signed_in)

    assert "3 of 8" in page
    assert shown(ADDED) in page
    assert "Confirmed" in page
    assert "Make a new set now" not in page


def test_codes_never_confirmed_as_saved_are_flagged(signed_in, user):
    add_codes(user, confirmed=False)
    page = page_of(signed_in)
    assert "8 of 8" in page
    assert "Not confirmed" in page and "Enter one code back" in page
    assert f'href="{CONFIRM_CODES}"' in page


def test_the_page_shows_only_the_signed_in_accounts_factors(signed_in, make_user):
    bob = make_user(username="bob")
    add_app(bob, last_used_at=USED)
    add_key(bob, "Bob's key")
    add_codes(bob, used=7)

    page = page_of(signed_in)

    assert "Bob&#x27;s key" not in page and exact(USED) not in page
    assert "Not set up." in page and "You have no recovery codes." in page


def test_looking_at_the_page_changes_nothing(signed_in, user):
    """GET never changes state: no event, no row touched."""
    add_app(user, last_used_at=USED)
    add_key(user, "Desk key")
    add_codes(user, used=7)
    before = (
        list(TotpDevice.objects.values()),
        list(WebAuthnCredential.objects.values()),
        list(RecoveryCode.objects.values()),
    )
    events = SecurityEvent.objects.count()

    page_of(signed_in)

    assert before == (
        list(TotpDevice.objects.values()),
        list(WebAuthnCredential.objects.values()),
        list(RecoveryCode.objects.values()),
    )
    assert SecurityEvent.objects.count() == events
    assert signed_in.post(PAGE).status_code == 405


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get(PAGE)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("signin:login"))


def test_the_page_needs_no_fresh_password(client, user):
    """It only reads; every page that changes a factor asks for the password itself."""
    sign_in(client, user, reauthenticated=False)
    assert client.get(PAGE).status_code == 200


def test_factor_summary_counts_codes_of_the_current_set_only(user, make_user):
    add_codes(user, used=3, total=8)
    add_codes(make_user(username="bob"), used=0, total=8)
    codes = factor_summary(user=user).codes
    assert codes is not None
    assert (codes.unused, codes.total, codes.running_low) == (5, 8, False)


# --- the account page ----------------------------------------------------------------------


def test_account_page_shows_what_is_set_up_last_use_and_codes_left(signed_in, user):
    """Issue 3 §7: the account page shows what is set up, when each factor was last used, and
    how many codes remain, with a link to the two-step sign-in page."""
    add_app(user, last_used_at=USED)
    add_key(user, "Desk key", last_used_at=USED_LATER)
    add_codes(user, used=2)

    html = signed_in.get(ACCOUNT).content.decode()
    page = readable(html)

    assert f'href="{PAGE}"' in html
    assert f"Authenticator app: set up, last used {shown(USED)}" in page
    assert f"Security keys: Desk key (last used {shown(USED_LATER)})" in page
    assert "Recovery codes: 6 of 8 unused" in page


def test_account_page_says_when_nothing_is_set_up(signed_in, user):
    add_key(user, "Desk key")
    add_codes(user, confirmed=False)
    page = readable(signed_in.get(ACCOUNT).content.decode())
    assert "Authenticator app: not set up" in page
    assert "Security keys: Desk key (never used yet)" in page
    assert "Recovery codes: 8 of 8 unused, not confirmed as saved" in page


# --- the check-up ---------------------------------------------------------------------------


def test_two_step_check_without_a_second_factor(user):
    """Issue 3 §6: an app or a key is a second factor; recovery codes alone are not."""
    add_codes(user)
    item = two_step_check(user)
    assert not item.ok
    assert item.title == "Turn on two-step sign-in"
    assert "authenticator app or a security key" in item.advice
    assert item.href == PAGE


@pytest.mark.parametrize(
    ("app", "keys", "named"),
    [
        (True, 0, "your authenticator app"),
        (False, 1, "your security key"),
        (True, 2, "your authenticator app or one of your 2 security keys"),
    ],
)
def test_two_step_check_names_the_factors_in_use(user, app, keys, named):
    if app:
        add_app(user)
    for n in range(keys):
        add_key(user, f"Key {n}")
    item = two_step_check(user)
    assert item.ok
    assert item.title == "Two-step sign-in is on"
    assert f"your password and {named}," in item.advice


@pytest.mark.parametrize(
    ("codes", "ok", "title", "href"),
    [
        (None, False, "Make recovery codes", MANAGE_CODES),
        ({"confirmed": False}, False, "Confirm you saved your recovery codes", CONFIRM_CODES),
        ({"used": 5}, True, "3 of 8 recovery codes unused", MANAGE_CODES),
        ({"used": 0}, True, "8 of 8 recovery codes unused", MANAGE_CODES),
        ({"used": 6}, False, "Only 2 recovery codes left", MANAGE_CODES),
        ({"used": 7}, False, "Only 1 recovery code left", MANAGE_CODES),
        ({"used": 8}, False, "All your recovery codes are used", MANAGE_CODES),
        # Running low wins: a new set is what is needed, and it will need confirming anyway.
        ({"used": 6, "confirmed": False}, False, "Only 2 recovery codes left", MANAGE_CODES),
    ],
)
def test_recovery_codes_check(user, codes, ok, title, href):
    """NIST N2: a fresh set is asked for when codes run low; unconfirmed codes don't count."""
    if codes is not None:
        add_codes(user, **codes)
    item = recovery_codes_check(user)
    assert (item.ok, item.title, item.href) == (ok, title, href)


def test_phishing_check_is_silent_without_a_second_factor(user):
    """The two-step item already says what to do; no second to-do about the same thing."""
    assert phishing_resistant_check(user) is None
    assert not any("phishing" in item.title for item in security_checkup(user=user))


def test_phishing_check_with_only_an_app_is_a_gentle_suggestion(user):
    """NIST N32: a phishing-resistant option is offered, but never nags as a to-do."""
    add_app(user)
    item = phishing_resistant_check(user)
    assert item is not None and item.ok
    assert "a security key would also stop phishing" in item.title
    assert "optional" in item.advice
    assert (item.link_label, item.href) == ("Add a security key", reverse("webauthn:add"))


def test_phishing_check_with_a_key(user):
    add_app(user)
    add_key(user, "Desk key")
    item = phishing_resistant_check(user)
    assert item is not None and item.ok
    assert item.title == "A security key guards your sign-in against phishing"
    assert item.href == reverse("webauthn:list")


def test_account_check_up_follows_the_factors(signed_in, user):
    """The to-do list on the account page shrinks as the user sets things up."""

    def to_do() -> list[str]:
        response = signed_in.get(ACCOUNT)
        titles = [item.title for item in response.context["to_do"]]
        page = response.content.decode()
        assert all(title in page for title in titles)
        return [t for t in titles if t != "Add a second email address"]

    def protections() -> list[str]:
        return [item.title for item in signed_in.get(ACCOUNT).context["protections"]]

    assert to_do() == ["Turn on two-step sign-in", "Make recovery codes"]

    code_set = add_codes(user, confirmed=False)
    assert to_do() == ["Turn on two-step sign-in", "Confirm you saved your recovery codes"]

    code_set.confirmed_at = timezone.now()
    code_set.save()
    add_app(user)
    assert to_do() == []
    assert "Two-step sign-in is on" in protections()
    assert "8 of 8 recovery codes unused" in protections()
    assert any("would also stop phishing" in t for t in protections())

    RecoveryCode.objects.filter(code_set=code_set).exclude(identifier__in=["id00", "id01"]).update(
        used_at=timezone.now()
    )
    assert to_do() == ["Only 2 recovery codes left"]

    add_key(user, "Desk key")
    assert "A security key guards your sign-in against phishing" in protections()
