"""Recovery codes: the pages, the services the sign-in flow calls, and the one-hash check
(issue 3 §3; NIST N2, N22, N23, N24; ASVS 6.5.1, 6.5.2, 6.5.3, 7.5.1)."""

import re

import pytest
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client, RequestFactory, TestCase

from relatch.audit.models import EventKind, Factor, SecurityEvent
from relatch.mfa.models import RecoveryCode, RecoveryCodeSet, TotpDevice
from relatch.mfa.recovery_codes import display
from relatch.mfa.recovery_codes.services import (
    RecoveryCodeAlreadyUsedError,
    find_unused_code,
    generate_recovery_codes,
    has_confirmed_codes,
    saved_codes_required,
    spend_recovery_code,
    unused_code_count,
)
from relatch.mfa.recovery_codes.views import ALREADY_SENT
from tests.conftest import CommittingClient, run_pending_tasks, sign_in
from tests.hashers import FastArgon2idHasher

PAGE = "/account/two-factor/recovery-codes/"
NEW = PAGE + "new/"
SHOW = PAGE + "show/"
DOWNLOAD = PAGE + "download/"
CONFIRM = PAGE + "confirm/"
USED = PAGE + "used/"
SHOWN_CODE = re.compile(r"<code>([0-9A-Z]{4}(?:-[0-9A-Z]{4}){4})</code>")
TOKEN = re.compile(r'name="form_token" value="([^"]+)"')
WELL_FORMED_STRANGER = "ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ"


def form_token(client: Client, page: str = PAGE) -> str:
    match = TOKEN.search(client.get(page).text)
    assert match, "no make-a-new-set form on the page"
    return match.group(1)


def make_codes(client: Client) -> list[str]:
    """Make a set through the pages, as a person does, and read it off the page."""
    response = client.post(NEW, {"form_token": form_token(client)})
    assert response.status_code == 302, response.content
    assert response["Location"] == SHOW
    page = client.get(SHOW)
    assert page.status_code == 200
    return SHOWN_CODE.findall(page.text)


def codes_for(user) -> list[str]:
    """A set made by the service directly; its mail delivered."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        codes = generate_recovery_codes(request=None, user=user)
    run_pending_tasks()
    return codes


def spend(user, text: str) -> int:
    code = find_unused_code(user=user, code=text)
    assert code is not None
    with TestCase.captureOnCommitCallbacks(execute=True):
        left = spend_recovery_code(request=None, user=user, code=code)
    run_pending_tasks()
    return left


def events(user, kind: EventKind) -> list[SecurityEvent]:
    return list(SecurityEvent.objects.filter(user=user, kind=kind))


def add_verified_address(user, address: str) -> None:
    from django.utils import timezone

    user.emails.create(address=address, verified=True, verified_at=timezone.now())


# --- making a set ----------------------------------------------------------------------


def test_page_without_codes_offers_to_make_them(signed_in):
    response = signed_in.get(PAGE)
    assert response.status_code == 200
    assert "You have no recovery codes yet." in response.text
    assert "Make recovery codes" in response.text


def test_making_a_set_shows_eight_codes_and_tells_every_verified_address(signed_in, user, mail):
    """NIST N2: issuing codes is announced to every verified address (N9), not to an
    unverified one."""
    add_verified_address(user, "alice@work.example")
    user.emails.create(address="maybe@example.net")
    codes = make_codes(signed_in)
    assert len(codes) == 8 == len(set(codes))
    code_set = RecoveryCodeSet.objects.get(user=user)
    assert code_set.confirmed_at is None
    assert sorted(c.identifier for c in code_set.codes.all()) == sorted(c[:4] for c in codes)
    [event] = events(user, EventKind.RECOVERY_CODES_GENERATED)
    assert event.details == {"codes": 8, "replaced": False}
    assert event.ip_address == "127.0.0.1"
    for address in ("alice@example.org", "alice@work.example"):
        message = mail.last(address)
        assert message["Subject"] == "New recovery codes were made for your Relatch account"
        assert "A new set of 8 recovery codes was made" in mail.text(message)
        assert "If this wasn't you" in mail.html(message)
        for code in codes:  # the mail never carries a code
            assert code not in mail.text(message) and code not in mail.html(message)
    assert mail.to("maybe@example.net") == []


def test_the_codes_page_is_private_and_loads_no_inline_script(signed_in):
    signed_in.post(NEW, {"form_token": form_token(signed_in)})
    page = signed_in.get(SHOW)
    assert "no-store" in page["Cache-Control"]
    assert "script-src 'self'" in page["Content-Security-Policy"]
    assert '<script src="/static/relatch/recovery-codes.js">' in page.text
    assert "<script>" not in page.text
    assert 'data-recovery-codes="copy"' in page.text
    assert 'data-recovery-codes="print"' in page.text


def test_the_copy_and_print_script_and_print_rules_are_served(client):
    script = client.get("/static/relatch/recovery-codes.js")
    assert script.status_code == 200
    body = b"".join(script.streaming_content).decode()
    assert "navigator.clipboard.writeText" in body and "window.print()" in body
    css = b"".join(client.get("/static/relatch/site.css").streaming_content).decode()
    assert "@media print" in css and ".no-print" in css


def dump_database() -> str:
    """Every row of every table as text, sessions decoded: what a database backup holds."""
    rows: list[str] = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 (table names from Django)
            rows.extend(repr(row) for row in cursor.fetchall())
    rows.extend(repr(s.get_decoded()) for s in Session.objects.all())
    return "\n".join(rows)


def test_codes_are_hashed_at_rest_even_while_on_display(signed_in, user):
    """NIST N2/N23, ASVS 6.5.2: only Argon2id hashes are stored, and the codes kept for their
    one display are not in the database (the session row) in clear either."""
    codes = make_codes(signed_in)
    assert signed_in.get(DOWNLOAD).status_code == 200  # still on display
    everything = dump_database()
    for code in codes:
        assert code not in everything
        assert code.replace("-", "")[4:] not in everything  # the secret part
    for row in RecoveryCode.objects.filter(code_set__user=user):
        assert row.code_hash.startswith("argon2$argon2id$")


# --- shown once, download while the page is open ------------------------------------------


def test_codes_are_shown_once_and_a_reload_shows_them_no_more(signed_in):
    """NIST N22: look-up secrets are delivered once; a reload (or the browser's history) does
    not bring them back, and neither does the download link after that."""
    codes = make_codes(signed_in)
    again = signed_in.get(SHOW)
    assert again.status_code == 410
    assert "These codes are no longer shown" in again.text
    for code in codes:
        assert code not in again.text
    assert signed_in.get(DOWNLOAD).status_code == 410


def test_download_works_while_the_page_is_open(signed_in):
    codes = make_codes(signed_in)
    for _ in range(2):  # twice: a cancelled save dialog can be retried
        response = signed_in.get(DOWNLOAD)
        assert response.status_code == 200
        assert response["Content-Type"] == "text/plain; charset=utf-8"
        assert response["Content-Disposition"] == (
            'attachment; filename="relatch-recovery-codes-alice.txt"'
        )
        assert "no-store" in response["Cache-Control"]
        text = response.content.decode()
        assert "Relatch recovery codes for alice" in text
        assert [
            line for line in text.splitlines() if SHOWN_CODE.match(f"<code>{line}</code>")
        ] == codes


def test_download_before_the_page_was_shown_works_too(signed_in):
    signed_in.post(NEW, {"form_token": form_token(signed_in)})
    assert signed_in.get(DOWNLOAD).status_code == 200


def test_another_browser_of_the_same_account_cannot_see_or_download_them(
    signed_in, user, make_client
):
    signed_in.post(NEW, {"form_token": form_token(signed_in)})
    other = sign_in(make_client(), user)
    assert other.get(SHOW).status_code == 410
    assert other.get(DOWNLOAD).status_code == 410
    assert signed_in.get(SHOW).status_code == 200  # the browser that made them still can


def test_the_pad_cookie_alone_or_the_session_alone_reveals_nothing(signed_in, user):
    signed_in.post(NEW, {"form_token": form_token(signed_in)})
    signed_in.cookies.pop("relatch-recovery-codes-pad")
    assert signed_in.get(DOWNLOAD).status_code == 410


def test_codes_on_display_expire(signed_in, monkeypatch):
    monkeypatch.setattr(display, "DISPLAY_SECONDS", -1)
    signed_in.post(NEW, {"form_token": form_token(signed_in)})
    assert signed_in.get(SHOW).status_code == 410
    assert signed_in.get(DOWNLOAD).status_code == 410


def test_nothing_to_show_or_download_without_a_new_set(signed_in):
    assert signed_in.get(SHOW).status_code == 410
    assert signed_in.get(DOWNLOAD).status_code == 410


def test_codes_replaced_from_another_browser_are_not_shown(signed_in, user, make_client):
    signed_in.post(NEW, {"form_token": form_token(signed_in)})
    codes_for(user)  # a newer set, made elsewhere: the first one is dead
    assert signed_in.get(SHOW).status_code == 410


# --- replacing, re-authentication, double submit --------------------------------------------


def test_a_new_set_replaces_the_old_one(signed_in, user, mail):
    """Issue 3 §3: a new set replaces the old; every old code stops working."""
    old = make_codes(signed_in)
    new = make_codes(signed_in)
    assert not set(old) & set(new)
    assert RecoveryCode.objects.filter(code_set__user=user).count() == 8
    for code in old:
        assert find_unused_code(user=user, code=code) is None
    for code in new:
        assert find_unused_code(user=user, code=code) is not None
    assert events(user, EventKind.RECOVERY_CODES_GENERATED)[0].details["replaced"] is True
    assert "The previous recovery codes of the account no longer work." in mail.text(
        mail.last("alice@example.org")
    )


def test_making_a_set_needs_a_recent_password(client, user, mail):
    """ASVS 7.5.1: recovery data changes only after re-authentication; a stale POST changes
    nothing and comes back to the page."""
    sign_in(client, user, reauthenticated=False)
    response = client.post(NEW, {"form_token": form_token(client)})
    assert response.status_code == 302
    assert response["Location"] == "/account/reauthenticate/?next=" + PAGE.replace("/", "%2F")
    assert not RecoveryCodeSet.objects.filter(user=user).exists()
    assert events(user, EventKind.RECOVERY_CODES_GENERATED) == []
    assert mail.messages == []


def test_opening_the_action_by_get_changes_nothing(signed_in, user):
    response = signed_in.get(NEW)
    assert response.status_code == 302
    assert response["Location"] == PAGE
    assert not RecoveryCodeSet.objects.filter(user=user).exists()


def test_a_double_submit_makes_one_set_and_says_so(signed_in, user):
    token = form_token(signed_in)
    assert signed_in.post(NEW, {"form_token": token}).status_code == 302
    first = RecoveryCodeSet.objects.get(user=user)
    second = signed_in.post(NEW, {"form_token": token})
    assert second.status_code == 400
    assert ALREADY_SENT in second.text.replace("&#x27;", "'")
    assert "Show your new codes" in second.text  # the first click's codes are not lost
    assert RecoveryCodeSet.objects.get(user=user).pk == first.pk
    assert len(events(user, EventKind.RECOVERY_CODES_GENERATED)) == 1
    assert len(SHOWN_CODE.findall(signed_in.get(SHOW).text)) == 8


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"form_token": ""},
        {"form_token": "forged"},
        {"form_token": "forgé"},
        {"form_token": "x" * 65},
    ],
)
def test_a_missing_or_forged_form_token_is_refused(signed_in, user, data):
    form_token(signed_in)
    response = signed_in.post(NEW, data)
    assert response.status_code == 400
    assert not RecoveryCodeSet.objects.filter(user=user).exists()


def test_a_post_without_csrf_token_is_refused(user):
    browser = sign_in(CommittingClient(enforce_csrf_checks=True), user)
    token = form_token(browser)
    assert browser.post(NEW, {"form_token": token}).status_code == 403
    assert not RecoveryCodeSet.objects.filter(user=user).exists()


# --- confirming the set was saved --------------------------------------------------------------


def test_confirming_by_entering_a_code_back_does_not_spend_it(signed_in, user):
    """Issue 3 §3: proof of saving, without using a code up."""
    codes = make_codes(signed_in)
    assert signed_in.get(CONFIRM).status_code == 200
    response = signed_in.post(CONFIRM, {"code": codes[3]})
    assert response.status_code == 302
    assert response["Location"] == PAGE
    page = signed_in.get(PAGE)
    assert "your recovery codes are saved" in page.text
    assert "8 of 8" in page.text
    assert RecoveryCodeSet.objects.get(user=user).confirmed_at is not None
    assert not RecoveryCode.objects.filter(used_at__isnull=False).exists()
    assert len(events(user, EventKind.RECOVERY_CODES_CONFIRMED)) == 1
    assert has_confirmed_codes(user)
    assert spend(user, codes[3]) == 7  # still usable afterwards
    assert signed_in.get(DOWNLOAD).status_code == 410  # confirming ended the display


@pytest.mark.parametrize("typing", [str.lower, lambda c: c.replace("-", " "), lambda c: f" {c} "])
def test_confirming_forgives_how_the_code_is_typed(signed_in, user, typing):
    codes = make_codes(signed_in)
    assert signed_in.post(CONFIRM, {"code": typing(codes[0])}).status_code == 302
    assert RecoveryCodeSet.objects.get(user=user).confirmed_at is not None


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "Enter one of your recovery codes."),
        ("ABCD-EFGH", "has 20 letters and digits"),
        ("ABCD-EFGH-JKMN-PQRS-TVWU", "never in a code"),
        ("A" * 10_000, "too long for a recovery code"),
        (WELL_FORMED_STRANGER, "not one of your unused recovery codes"),
    ],
)
def test_a_malformed_or_wrong_code_is_refused_and_changes_nothing(signed_in, user, typed, message):
    make_codes(signed_in)
    response = signed_in.post(CONFIRM, {"code": typed})
    assert response.status_code == 400
    assert message in response.text
    assert f'value="{typed}"' not in response.text  # what was typed is not sent back
    assert RecoveryCodeSet.objects.get(user=user).confirmed_at is None
    assert events(user, EventKind.RECOVERY_CODES_CONFIRMED) == []


def test_a_code_of_another_account_is_refused(signed_in, user, make_user):
    bob_codes = codes_for(make_user(username="bob"))
    make_codes(signed_in)
    response = signed_in.post(CONFIRM, {"code": bob_codes[0]})
    assert response.status_code == 400
    assert "not one of your unused recovery codes" in response.text
    assert RecoveryCodeSet.objects.get(user=user).confirmed_at is None


def test_a_used_code_does_not_confirm(signed_in, user):
    codes = make_codes(signed_in)
    spend(user, codes[0])
    assert signed_in.post(CONFIRM, {"code": codes[0]}).status_code == 400
    assert signed_in.post(CONFIRM, {"code": codes[1]}).status_code == 302


def test_confirming_twice_is_refused(signed_in, user):
    codes = make_codes(signed_in)
    assert signed_in.post(CONFIRM, {"code": codes[0]}).status_code == 302
    again = signed_in.post(CONFIRM, {"code": codes[0]})
    assert again.status_code == 400
    assert "already confirmed" in again.text
    assert codes[0] not in again.text  # a right code is not echoed back either
    assert len(events(user, EventKind.RECOVERY_CODES_CONFIRMED)) == 1


def test_confirming_without_codes_says_to_make_them(signed_in):
    assert "You have no recovery codes yet" in signed_in.get(CONFIRM).text
    response = signed_in.post(CONFIRM, {"code": WELL_FORMED_STRANGER})
    assert response.status_code == 400
    assert "Make a set first" in response.text


def test_wrong_codes_on_the_confirm_page_are_throttled(signed_in, user):
    """NIST N2/N24: guesses are rate-limited; after ten, even the right code waits."""
    codes = make_codes(signed_in)
    for _ in range(10):
        assert signed_in.post(CONFIRM, {"code": WELL_FORMED_STRANGER}).status_code == 400
    response = signed_in.post(CONFIRM, {"code": codes[0]})
    assert response.status_code == 429
    assert "Too many wrong codes" in response.text
    assert RecoveryCodeSet.objects.get(user=user).confirmed_at is None


# --- spending (the sign-in flow's calls) -----------------------------------------------------


def test_a_spent_code_is_used_once_and_announced_to_every_verified_address(user, mail):
    """NIST N2/N22, ASVS 6.5.1: single use; the use is reported with a way to a new set."""
    add_verified_address(user, "alice@work.example")
    codes = codes_for(user)
    mail.clear()
    code = find_unused_code(user=user, code=codes[2])
    assert code is not None
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert spend_recovery_code(request=None, user=user, code=code) == 7
    run_pending_tasks()
    code.refresh_from_db()
    assert code.used_at is not None
    with pytest.raises(RecoveryCodeAlreadyUsedError):
        spend_recovery_code(request=None, user=user, code=code)
    assert find_unused_code(user=user, code=codes[2]) is None
    assert unused_code_count(user) == 7
    [event] = events(user, EventKind.RECOVERY_CODE_USED)
    assert event.factor == Factor.RECOVERY_CODE
    assert event.details == {"identifier": codes[2][:4], "codes_left": 7}
    for address in ("alice@example.org", "alice@work.example"):
        message = mail.last(address)
        assert message["Subject"] == "A recovery code was used on your Relatch account"
        text = mail.text(message)
        assert f"the one that starts with {codes[2][:4]}" in text
        assert "7 unused codes remain." in text
        assert "http://testserver/account/two-factor/recovery-codes/" in text
        assert codes[2] not in text


def test_a_stale_copy_of_a_spent_code_cannot_be_spent_again(user):
    """Two sign-ins racing with the same code: the second spend is refused."""
    codes = codes_for(user)
    first = find_unused_code(user=user, code=codes[0])
    second = find_unused_code(user=user, code=codes[0])
    assert first is not None and second is not None
    spend_recovery_code(request=None, user=user, code=first)
    with pytest.raises(RecoveryCodeAlreadyUsedError):
        spend_recovery_code(request=None, user=user, code=second)
    assert len(events(user, EventKind.RECOVERY_CODE_USED)) == 1


def test_a_code_of_another_account_is_neither_found_nor_spent(user, make_user):
    bob = make_user(username="bob")
    bob_codes = codes_for(bob)
    codes_for(user)
    assert find_unused_code(user=user, code=bob_codes[0]) is None
    bob_code = find_unused_code(user=bob, code=bob_codes[0])
    assert bob_code is not None
    with pytest.raises(RecoveryCodeAlreadyUsedError):
        spend_recovery_code(request=None, user=user, code=bob_code)
    assert unused_code_count(bob) == 8


def test_find_unused_code_reads_forgivingly_and_changes_nothing(user):
    codes = codes_for(user)
    found = find_unused_code(user=user, code=codes[5].lower().replace("-", " "))
    assert found is not None and found.identifier == codes[5][:4]
    assert unused_code_count(user) == 8
    assert events(user, EventKind.RECOVERY_CODE_USED) == []


@pytest.mark.parametrize(
    ("left", "prompt"),
    [
        (3, None),
        (2, "Only 2 unused codes left"),
        (1, "Only 1 unused code left"),
        (0, "No unused code left"),
    ],
)
def test_the_page_asks_for_a_new_set_when_two_or_fewer_remain(signed_in, user, left, prompt):
    codes = make_codes(signed_in)
    for code in codes[: 8 - left]:
        spend(user, code)
    page = signed_in.get(PAGE).text
    assert f"{left} of 8" in page
    if prompt is None:
        assert "left." not in page
    else:
        assert prompt in page
        assert "Make a new set now" in page


def test_a_confirmed_set_with_every_code_used_no_longer_counts(user):
    codes = codes_for(user)
    RecoveryCodeSet.objects.filter(user=user).update(confirmed_at="2026-01-01T00:00Z")
    assert has_confirmed_codes(user)
    for code in codes:
        spend(user, code)
    assert not has_confirmed_codes(user)


# --- after a sign-in with a code ---------------------------------------------------------------


def test_after_a_sign_in_with_a_code_the_page_asks_for_a_new_set(signed_in, user):
    """NIST N2: a new saved code after each use; the page leads straight to making one."""
    codes = make_codes(signed_in)
    spend(user, codes[0])
    page = signed_in.get(USED)
    assert page.status_code == 200
    assert "You used a recovery code: make a new set now" in page.text
    assert "You have 7 unused codes left." in page.text
    token = TOKEN.search(page.text)
    assert token
    assert signed_in.post(NEW, {"form_token": token.group(1)})["Location"] == SHOW
    assert unused_code_count(user) == 8


# --- the gate before a first second factor -----------------------------------------------------


def gate(client: Client, user, next_url: str):
    request = RequestFactory().get(next_url)
    request.user = user
    request.session = client.session
    response = saved_codes_required(request, next_url)
    request.session.save()
    return response


def test_a_first_factor_waits_for_confirmed_codes_then_comes_back(signed_in, user):
    response = gate(signed_in, user, "/account/two-factor/app/")
    assert response is not None
    assert response.status_code == 302
    assert response["Location"] == PAGE
    page = signed_in.get(PAGE)
    assert "Save recovery codes first." in page.text
    codes = make_codes(signed_in)
    assert gate(signed_in, user, "/account/two-factor/app/") is not None  # not confirmed yet
    confirmed = signed_in.post(CONFIRM, {"code": codes[0]})
    assert confirmed["Location"] == "/account/two-factor/app/"
    assert gate(signed_in, user, "/account/two-factor/app/") is None
    assert "Save recovery codes first." not in signed_in.get(PAGE).text


def test_the_gate_never_sends_the_user_off_site(signed_in, user):
    gate(signed_in, user, "https://evil.example/")
    gate(signed_in, user, "//evil.example/")
    codes = make_codes(signed_in)
    assert signed_in.post(CONFIRM, {"code": codes[0]})["Location"] == PAGE


def test_the_gate_lets_a_second_factor_through(signed_in, user):
    TotpDevice.objects.create(user=user, encrypted_secret="x")
    assert gate(signed_in, user, "/account/two-factor/keys/") is None


# --- the one-hash property (the benchmark's claim, counted) ------------------------------------


@pytest.fixture
def verify_calls(monkeypatch) -> list[str]:
    """Counts Argon2 verifications: wraps the (test) hasher's verify. Counting, not timing."""
    calls: list[str] = []
    real = FastArgon2idHasher.verify

    def counting(self, password, encoded):
        calls.append(encoded)
        return real(self, password, encoded)

    monkeypatch.setattr(FastArgon2idHasher, "verify", counting)
    return calls


@pytest.mark.parametrize(
    ("case", "found"),
    [
        ("right", True),
        ("wrong secret, identifier exists", False),
        ("identifier does not exist", False),
        ("used code", False),
        ("malformed", False),
        ("overlong", False),
        ("account without codes", False),
    ],
)
def test_every_check_costs_exactly_one_argon2_verification(
    user, make_user, verify_calls, case, found
):
    """DESIGN §2: constant work per attempt, one hash whatever the number of codes and
    whatever was typed (PyPI tries every stored hash in turn)."""
    codes = codes_for(user)
    spend(user, codes[7])
    texts = {
        "right": codes[0],
        "wrong secret, identifier exists": codes[1][:5] + "ZZZZ-ZZZZ-ZZZZ-ZZZZ",
        "identifier does not exist": WELL_FORMED_STRANGER,
        "used code": codes[7],
        "malformed": "not a code",
        "overlong": "A" * 100_000,
        "account without codes": codes[0],
    }
    owner = make_user(username="bob") if case == "account without codes" else user
    verify_calls.clear()
    assert (find_unused_code(user=owner, code=texts[case]) is not None) is found
    assert len(verify_calls) == 1
