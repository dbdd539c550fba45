"""The authenticator app (issue 3 §1): enrol through the pages, check codes for the sign-in
flow, replace and remove. Codes come from Debian's oathtool, not from the server's pyotp."""

import base64
import html
import json
import re
import subprocess
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import segno
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from relatch.accounts.models import User
from relatch.audit.models import EventKind, SecurityEvent
from relatch.mfa.models import RecoveryCode, RecoveryCodeSet, TotpDevice, WebAuthnCredential
from relatch.mfa.totp.primitive import time_step
from relatch.mfa.totp.services import verify_totp
from tests.conftest import CommittingClient, sign_in
from tests.index.project_rows import make_project

pytestmark = pytest.mark.django_db

SETUP = "/account/two-factor/app/"
CONFIRM = "/account/two-factor/app/confirm/"
REMOVE = "/account/two-factor/app/remove/"
SECURITY_FOOTER = "If this wasn't you"
MALFORMED_INPUTS = ["12345", "abcdef", "1234567", "12 34 5", "", "1" * 10_240]


# --- helpers --------------------------------------------------------------------------------


def oathtool(secret: str, at: datetime | None = None, steps: int = 0) -> str:
    """oathtool's code for ``secret`` at ``at`` (default: the real now) moved by ``steps``."""
    args = ["oathtool", "--totp", "-b"]
    if at is not None or steps:
        when = (at or timezone.now()) + timedelta(seconds=30 * steps)
        args += ["--now", when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")]
    result = subprocess.run([*args, secret], capture_output=True, text=True, check=True)
    return result.stdout.strip()


def code_none_of(secret: str, at: datetime, window: int = 12) -> str:
    """A well-formed code matching no step within ``window`` of ``at``."""
    near = {oathtool(secret, at, steps) for steps in range(-window, window + 1)}
    return next(c for c in (f"{n:06d}" for n in range(0, 10**6, 7919)) if c not in near)


def page_text(response: Any) -> str:
    return response.content.decode()


def page_secret(response: Any) -> str:
    """The secret as the page shows it for typing (groups of four), without the spaces."""
    found = re.search(r'<code class="totp-secret">([A-Z2-7 ]+)</code>', page_text(response))
    assert found, "no secret on the page"
    return found.group(1).replace(" ", "")


def page_otpauth_uri(response: Any) -> str:
    found = re.search(r'href="(otpauth://[^"]+)"', page_text(response))
    assert found, "no otpauth link on the page"
    return html.unescape(found.group(1))


def page_qr_svg(response: Any) -> str:
    pattern = r'<img src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"'
    found = re.search(pattern, page_text(response))
    assert found, "no SVG QR code on the page"
    return base64.b64decode(found.group(1)).decode()


def svg_dark_modules(svg: str) -> set[tuple[int, int]]:
    """The dark modules drawn by the SVG's path (runs of "h" along rows), from its top-left."""
    found = re.search(r'<path[^>]*class="qrline"[^>]*\sd="([^"]+)"', svg)
    assert found, "no QR path in the SVG"
    x = y = 0.0
    dark: set[tuple[int, int]] = set()
    for command, args in re.findall(r"([MmHh])([-0-9. ]+)", found.group(1)):
        numbers = [float(n) for n in args.split()]
        if command == "M":
            x, y = numbers
        elif command == "m":
            x, y = x + numbers[0], y + numbers[1]
        else:
            dark.update((int(x) + i, int(y)) for i in range(int(numbers[0])))
            x += numbers[0]
    left, top = min(c for c, _ in dark), min(r for _, r in dark)
    return {(c - left, r - top) for c, r in dark}


def qr_modules(uri: str, error: str) -> set[tuple[int, int]]:
    matrix = segno.make(uri, error=error, boost_error=False, micro=False).matrix
    return {(c, r) for r, row in enumerate(matrix) for c, dark in enumerate(row) if dark}


def events(user: User, kind: EventKind) -> list[SecurityEvent]:
    return list(SecurityEvent.objects.filter(user=user, kind=kind))


def reminder_tasks() -> list[DBTaskResult]:
    return list(DBTaskResult.objects.filter(task_path__endswith="send_factor_reminder"))


def save_codes(user: User) -> None:
    """A confirmed set of recovery codes (the gate before a first factor); hashes are not used."""
    code_set = RecoveryCodeSet.objects.create(user=user, confirmed_at=timezone.now())
    RecoveryCode.objects.create(code_set=code_set, identifier="ABCD", code_hash="unused")


def add_key(user: User) -> WebAuthnCredential:
    return WebAuthnCredential.objects.create(
        user=user, label="Blue key", credential_id="AAAA", public_key=b"x"
    )


def enrol(client: Any) -> str:
    """Set up the app through the pages; returns the secret read from the page."""
    secret = page_secret(client.get(SETUP))
    response = client.post(CONFIRM, {"code": oathtool(secret)})
    assert response.status_code == 302, page_text(response)
    return secret


@pytest.fixture
def alice(user: User) -> User:
    """Alice with saved recovery codes and a second verified address."""
    save_codes(user)
    user.emails.create(address="alice@work.example", verified=True, verified_at=timezone.now())
    return user


@pytest.fixture
def browser(client: CommittingClient, alice: User) -> CommittingClient:
    return sign_in(client, alice)


@pytest.fixture
def enrolled(browser: CommittingClient, mail: Any) -> str:
    secret = enrol(browser)
    mail.clear()
    return secret


@pytest.fixture
def later() -> datetime:
    """A fixed instant an hour ahead, in the middle of a step: after the enrolment's step, and
    no test races a step boundary."""
    ahead = timezone.now() + timedelta(hours=1)
    return ahead.replace(second=15 if ahead.second < 30 else 45, microsecond=0)


# --- enrolment ------------------------------------------------------------------------------


def test_enrol_with_a_code_from_oathtool_announces_it_and_schedules_the_reminder(
    browser, alice, mail
):
    """NIST N14: every verified address hears of the new factor; issue 3 §7: a reminder."""
    page = browser.get(SETUP)
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"]  # the page shows a secret
    text = page_text(page)
    assert "Set up an authenticator app" in text and "Relatch" in text and "alice" in text
    secret = page_secret(page)

    response = browser.post(CONFIRM, {"code": oathtool(secret)})
    assert response.status_code == 302 and response["Location"] == SETUP
    after = page_text(browser.get(SETUP))
    assert "Authenticator app added" in after and "An authenticator app is set up" in after
    assert secret not in after and secret[:4] + " " not in after  # never shown again

    device = TotpDevice.objects.get(user=alice)
    assert abs(device.last_used_step - time_step(timezone.now())) <= 1
    added = events(alice, EventKind.TOTP_ADDED)
    assert len(added) == 1 and added[0].factor == "totp"
    assert secret not in json.dumps(added[0].details)
    for address in ("alice@example.org", "alice@work.example"):
        message = mail.last(address)
        assert "authenticator app was added" in str(message["Subject"])
        assert SECURITY_FOOTER in mail.text(message) and secret not in mail.text(message)
    [reminder] = reminder_tasks()
    assert reminder.run_after - timezone.now() > timedelta(days=13)


def test_the_confirming_code_cannot_sign_in_again(browser, alice):
    """NIST N26 / ASVS 6.5.1: the code that confirmed the app was used once already."""
    secret = page_secret(browser.get(SETUP))
    code = oathtool(secret)
    assert browser.post(CONFIRM, {"code": code}).status_code == 302
    check = verify_totp(request=None, user=alice, code=code)
    assert (check.ok, check.reason) == (False, "replayed")


def test_secret_is_encrypted_at_rest_and_sealed_in_the_session(browser, alice):
    """The database and the session table never hold the secret in plain text."""
    page = browser.get(SETUP)
    secret = page_secret(page)
    assert secret not in json.dumps(dict(browser.session))
    browser.post(CONFIRM, {"code": oathtool(secret)})
    with connection.cursor() as cursor:
        cursor.execute("SELECT encrypted_secret FROM mfa_totpdevice")
        [(stored,)] = cursor.fetchall()
    assert secret not in stored and secret.lower() not in stored
    assert len(base64.b32decode(secret)) * 8 >= 160  # NIST N25


def test_qr_code_is_an_svg_of_the_otpauth_uri_with_the_shown_secret(browser):
    """The picture and the text agree: the QR code decodes to the URI naming this secret."""
    page = browser.get(SETUP)
    secret = page_secret(page)
    uri = page_otpauth_uri(page)
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc, parts.path) == ("otpauth", "totp", "/Relatch:alice")
    assert parse_qs(parts.query) == {"secret": [secret], "issuer": ["Relatch"]}
    drawn = svg_dark_modules(page_qr_svg(page))
    assert any(drawn == qr_modules(uri, level) for level in "lmqh")
    assert not any(drawn == qr_modules(uri.replace(secret, "A" * 32), lv) for lv in "lmqh")


def test_reloading_the_page_keeps_the_same_secret(browser):
    assert page_secret(browser.get(SETUP)) == page_secret(browser.get(SETUP))


def test_wrong_code_says_so_and_keeps_the_secret_for_another_try(browser, alice, mail):
    page = browser.get(SETUP)
    secret = page_secret(page)
    response = browser.post(CONFIRM, {"code": code_none_of(secret, timezone.now())})
    assert response.status_code == 400
    assert "That code is not right" in page_text(response)
    assert page_secret(response) == secret
    assert not TotpDevice.objects.exists() and mail.messages == []

    assert browser.post(CONFIRM, {"code": oathtool(secret)}).status_code == 302
    assert TotpDevice.objects.filter(user=alice).exists()


def test_a_code_from_a_phone_with_a_wrong_clock_gets_the_clock_message(browser):
    """NIST N28: ±1 step only; a code 3 minutes ahead is named as a clock problem."""
    secret = page_secret(browser.get(SETUP))
    response = browser.post(CONFIRM, {"code": oathtool(secret, steps=6)})
    assert response.status_code == 400
    text = html.unescape(page_text(response))
    assert "clock may be off" in text and "minutes ahead of" in text
    assert not TotpDevice.objects.exists()


@pytest.mark.parametrize("code", MALFORMED_INPUTS)
def test_malformed_codes_are_refused_plainly_and_change_nothing(browser, code, mail):
    secret = page_secret(browser.get(SETUP))
    events_before = SecurityEvent.objects.count()
    response = browser.post(CONFIRM, {"code": code})
    assert response.status_code == 400
    assert "Enter the 6-digit code" in page_text(response)
    assert page_secret(response) == secret
    assert not TotpDevice.objects.exists()
    assert SecurityEvent.objects.count() == events_before
    assert mail.messages == []


def test_code_with_spaces_is_accepted(browser, alice):
    secret = page_secret(browser.get(SETUP))
    code = oathtool(secret)
    assert browser.post(CONFIRM, {"code": f" {code[:3]} {code[3:]} "}).status_code == 302
    assert TotpDevice.objects.filter(user=alice).exists()


def test_a_pending_secret_expires_after_ten_minutes(browser):
    """NIST N16's 10 minutes for binding: a secret left on a screen stops being usable."""
    secret = page_secret(browser.get(SETUP))
    session = browser.session
    session["relatch_totp_pending"]["started_at"] -= 601
    session.save()
    response = browser.post(CONFIRM, {"code": oathtool(secret)})
    assert response.status_code == 400
    assert "This setup expired" in page_text(response)
    assert page_secret(response) != secret
    assert not TotpDevice.objects.exists()


def test_sending_the_confirm_form_twice_is_not_an_error(browser, alice, mail):
    secret = page_secret(browser.get(SETUP))
    code = oathtool(secret)
    assert browser.post(CONFIRM, {"code": code}).status_code == 302
    response = browser.post(CONFIRM, {"code": code}, follow=True)
    assert response.status_code == 200
    assert "Your authenticator app is set up" in page_text(response)
    assert TotpDevice.objects.count() == 1 and len(events(alice, EventKind.TOTP_ADDED)) == 1
    assert len(mail.to("alice@example.org")) == 1


def test_confirm_without_a_pending_secret_is_refused(browser):
    response = browser.post(CONFIRM, {"code": "123456"})
    assert response.status_code == 400 and "This setup expired" in page_text(response)
    assert not TotpDevice.objects.exists()


def test_a_first_factor_needs_saved_recovery_codes_first(client, user):
    """Issue 3 §3: no first factor before the recovery codes are saved (and proven)."""
    sign_in(client, user)
    response = client.get(SETUP)
    assert response.status_code == 302
    assert response["Location"].startswith("/account/two-factor/recovery-codes/")
    response = client.post(CONFIRM, {"code": "123456"})
    assert response.status_code == 302
    assert response["Location"].startswith("/account/two-factor/recovery-codes/")
    assert not TotpDevice.objects.exists() and not events(user, EventKind.TOTP_ADDED)


def test_a_second_factor_after_a_security_key_needs_no_new_codes(client, user):
    add_key(user)
    sign_in(client, user)
    secret = page_secret(client.get(SETUP))
    assert client.post(CONFIRM, {"code": oathtool(secret)}).status_code == 302
    assert TotpDevice.objects.filter(user=user).exists()
    assert reminder_tasks() == []  # the reminder came with the first factor, not this one


def test_enrolment_needs_a_recent_password(client, alice):
    """ASVS 7.5.1 / NIST N13: binding a factor needs a fresh authentication."""
    sign_in(client, alice, reauthenticated=False)
    response = client.get(SETUP)
    assert response.status_code == 302
    back_here = "next=%2Faccount%2Ftwo-factor%2Fapp%2F"
    assert response["Location"] == f"{reverse('signin:reauthenticate')}?{back_here}"
    response = client.post(CONFIRM, {"code": "123456"})
    assert response.status_code == 302 and "/reauthenticate" in response["Location"]
    assert back_here in response["Location"]
    assert not TotpDevice.objects.exists()


def test_confirm_without_csrf_token_is_refused(alice):
    browser = sign_in(CommittingClient(enforce_csrf_checks=True), alice)
    secret = page_secret(browser.get(SETUP))
    response = browser.post(CONFIRM, {"code": oathtool(secret)})
    assert response.status_code == 403
    assert not TotpDevice.objects.exists()


def test_get_on_an_action_changes_nothing(browser, enrolled):
    assert browser.get(CONFIRM).status_code == 405
    assert browser.get(REMOVE).status_code == 405
    assert TotpDevice.objects.count() == 1


def test_signed_out_visitor_is_sent_to_sign_in(client):
    response = client.get(SETUP)
    assert response.status_code == 302 and "/account/login" in response["Location"]


# --- replacing (a new phone) ----------------------------------------------------------------


def test_a_new_phone_replaces_the_old_app_in_one_step(browser, alice, enrolled, mail, later):
    """NIST N29: bind the new app and invalidate the old one, together."""
    status = page_text(browser.get(SETUP))
    assert "An authenticator app is set up" in status and "Move to a new phone" in status
    page = browser.get(SETUP + "?replace=1")
    assert "Move to a new authenticator app" in page_text(page)
    new_secret = page_secret(page)
    assert new_secret != enrolled

    assert browser.post(CONFIRM, {"code": oathtool(new_secret)}).status_code == 302
    assert TotpDevice.objects.filter(user=alice).count() == 1
    old = verify_totp(request=None, user=alice, code=oathtool(enrolled, later), now=later)
    assert old.reason == "wrong"
    new = verify_totp(request=None, user=alice, code=oathtool(new_secret, later), now=later)
    assert new.ok
    [removed] = events(alice, EventKind.TOTP_REMOVED)
    assert removed.details == {"replaced": True}
    first, replacement = sorted(events(alice, EventKind.TOTP_ADDED), key=lambda e: e.pk)
    assert first.details == {"replaced_previous": False}
    assert replacement.details == {"replaced_previous": True}
    for address in ("alice@example.org", "alice@work.example"):
        assert "replaced the old one" in str(mail.last(address)["Subject"])
    assert len(reminder_tasks()) == 1  # only the first enrolment's


def test_a_failed_replacement_keeps_the_old_app(browser, alice, enrolled, later):
    new_secret = page_secret(browser.get(SETUP + "?replace=1"))
    assert browser.post(CONFIRM, {"code": "000000x"}).status_code == 400
    wrong = code_none_of(new_secret, timezone.now())
    assert browser.post(CONFIRM, {"code": wrong}).status_code == 400
    assert verify_totp(request=None, user=alice, code=oathtool(enrolled, later), now=later).ok


# --- removing -------------------------------------------------------------------------------


def test_remove_with_a_recent_password_announces_it(browser, alice, enrolled, mail, later):
    """ASVS 6.5.6 / NIST N14 and N19: removed at once, and every verified address hears."""
    response = browser.post(REMOVE)
    assert response.status_code == 302 and response["Location"] == reverse("mfa:overview")
    assert not TotpDevice.objects.filter(user=alice).exists()
    check = verify_totp(request=None, user=alice, code=oathtool(enrolled, later), now=later)
    assert check.reason == "no_device"
    [removed] = events(alice, EventKind.TOTP_REMOVED)
    assert removed.factor == "totp" and removed.details == {"second_factors_left": 0}
    for address in ("alice@example.org", "alice@work.example"):
        message = mail.last(address)
        assert "authenticator app was removed" in str(message["Subject"])
        assert "no second factor left" in mail.text(message)
        assert SECURITY_FOOTER in mail.text(message)


def test_remove_without_a_recent_password_changes_nothing(client, alice, mail):
    """ASVS 7.5.1: a stale session cannot drop a factor."""
    sign_in(client, alice)
    enrol(client)
    mail.clear()
    session = client.session
    session.pop("relatch_reauth_at")
    session.save()
    response = client.post(REMOVE)
    assert response.status_code == 302 and "/reauthenticate" in response["Location"]
    assert TotpDevice.objects.filter(user=alice).exists()
    assert not events(alice, EventKind.TOTP_REMOVED) and mail.messages == []


def test_the_last_factor_of_a_project_owner_is_not_removed(browser, alice, enrolled, mail):
    """Issue 3 §6: refused with the policy's explanation."""
    make_project("alices-pkg", owners=(alice,))
    page = browser.get(SETUP)
    assert "your account owns projects" in page_text(page)
    response = browser.post(REMOVE)
    assert response.status_code == 409
    assert "your account owns projects" in page_text(response)
    assert TotpDevice.objects.filter(user=alice).exists()
    assert not events(alice, EventKind.TOTP_REMOVED) and mail.messages == []


def test_a_project_owner_with_a_security_key_may_remove_the_app(browser, alice, enrolled, mail):
    add_key(alice)
    make_project("alices-pkg", owners=(alice,))
    assert browser.post(REMOVE).status_code == 302
    assert not TotpDevice.objects.filter(user=alice).exists()
    assert "1 security key" in mail.text(mail.last("alice@example.org"))


def test_removing_twice_is_a_plain_message(browser, enrolled):
    assert browser.post(REMOVE).status_code == 302
    response = browser.post(REMOVE, follow=True)
    assert response.status_code == 200
    assert "has no authenticator app" in page_text(response)


# --- verify_totp: the sign-in flow's check ---------------------------------------------------


@pytest.mark.parametrize("steps", [-1, 0, 1])
def test_codes_one_step_either_side_are_accepted(alice, enrolled, later, steps):
    """NIST N28: the window is one step either side of the server's time."""
    events_before = SecurityEvent.objects.count()
    check = verify_totp(request=None, user=alice, code=oathtool(enrolled, later, steps), now=later)
    assert (check.ok, check.reason, check.message) == (True, "ok", "")
    device = TotpDevice.objects.get(user=alice)
    assert device.last_used_step == time_step(later) + steps
    assert device.last_used_at == later
    assert SecurityEvent.objects.count() == events_before  # the sign-in flow records it


@pytest.mark.parametrize(
    ("steps", "words"),
    [
        (2, "about 1 minute ahead of"),
        (-2, "about 1 minute behind"),
        (6, "about 3 minutes ahead of"),
        (-5, "about 3 minutes behind"),
        (10, "about 5 minutes ahead of"),
        (-10, "about 5 minutes behind"),
    ],
)
def test_codes_a_few_minutes_away_name_the_clock(alice, enrolled, later, steps, words):
    before = TotpDevice.objects.get(user=alice).last_used_step
    check = verify_totp(request=None, user=alice, code=oathtool(enrolled, later, steps), now=later)
    assert (check.ok, check.reason) == (False, "clock_skew")
    assert words in check.message and "clock may be off" in check.message
    assert TotpDevice.objects.get(user=alice).last_used_step == before


@pytest.mark.parametrize("steps", [-40, -11, 11, 40])
def test_codes_further_away_are_wrong(alice, enrolled, later, steps):
    check = verify_totp(request=None, user=alice, code=oathtool(enrolled, later, steps), now=later)
    assert (check.ok, check.reason) == (False, "wrong")
    assert "not right" in check.message


def test_the_same_code_twice_is_a_replay(alice, enrolled, later):
    """NIST N26 / ASVS 6.5.1: each code is accepted once."""
    code = oathtool(enrolled, later)
    assert verify_totp(request=None, user=alice, code=code, now=later).ok
    again = verify_totp(request=None, user=alice, code=code, now=later + timedelta(seconds=10))
    assert (again.ok, again.reason) == (False, "replayed")
    assert "already used" in again.message


def test_an_older_step_after_a_newer_one_is_a_replay(alice, enrolled, later):
    """NIST N26: a code seen after a newer one was accepted could be a captured one."""
    assert verify_totp(request=None, user=alice, code=oathtool(enrolled, later, 1), now=later).ok
    older = verify_totp(request=None, user=alice, code=oathtool(enrolled, later, 0), now=later)
    assert older.reason == "replayed"
    assert TotpDevice.objects.get(user=alice).last_used_step == time_step(later) + 1


def test_the_next_code_after_a_replay_is_accepted(alice, enrolled, later):
    assert verify_totp(request=None, user=alice, code=oathtool(enrolled, later), now=later).ok
    after = later + timedelta(seconds=30)
    assert verify_totp(request=None, user=alice, code=oathtool(enrolled, after), now=after).ok


@pytest.mark.parametrize("code", MALFORMED_INPUTS)
def test_malformed_codes_are_malformed_and_change_nothing(alice, enrolled, later, code):
    before = TotpDevice.objects.values().get(user=alice)
    check = verify_totp(request=None, user=alice, code=code, now=later)
    assert (check.ok, check.reason) == (False, "malformed")
    assert "6-digit code" in check.message
    assert TotpDevice.objects.values().get(user=alice) == before


def test_an_account_without_an_app_has_no_device(user):
    check = verify_totp(request=None, user=user, code="123456")
    assert (check.ok, check.reason) == (False, "no_device")


def test_the_server_clock_decides(alice, enrolled):
    """ASVS 6.5.8: without ``now``, the server's own time is used."""
    check = verify_totp(request=None, user=alice, code=oathtool(enrolled, steps=3))
    assert check.reason == "clock_skew"
    assert verify_totp(request=None, user=alice, code=oathtool(enrolled, steps=1)).ok
