"""The requester's side of recovery: "Can't sign in?", the request, the contact code, the
status page, messages, cancel, reopen, and the owner's "this wasn't me" (DESIGN §5)."""

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from relatch.audit.models import EventKind, SecurityEvent
from relatch.recovery.models import (
    ProofKind,
    RecoveryBlock,
    RecoveryMessage,
    RecoveryProof,
    RecoveryRequest,
    RecoveryTransition,
    State,
)
from relatch.recovery.requester import links, services
from tests.conftest import CommittingClient, sign_in
from tests.recovery.requests import make_request

pytestmark = pytest.mark.django_db

NEW = "/recovery/request/new/"
CONFIRM = "/recovery/request/confirm/"
CODE_RE = re.compile(r"Your code: (\d{6})")


def form(**overrides):
    data = {
        "username": "alice", "contact_email": "claimant@example.net",
        "still_has": ["repo_push"], "description": "Lost my phone and my mailbox.",
        "agreed": "on", "acknowledged": "on",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def code_from(mail, address="claimant@example.net"):
    match = CODE_RE.search(mail.text(mail.last(address)))
    assert match, mail.text(mail.last(address))
    return match.group(1)


def file_request(client, mail, **overrides):
    """Start a request and enter the mailed code; the filed row."""
    response = client.post(NEW, form(**overrides))
    assert response.status_code == 302
    contact = overrides.get("contact_email", "claimant@example.net")
    response = client.post(CONFIRM, {"code": code_from(mail, contact)})
    assert response.url == "/recovery/request/filed/"
    return RecoveryRequest.objects.order_by("-pk").first()


def status_path(recovery):
    return urlsplit(links.status_link(recovery)).path


@pytest.fixture
def staff(make_user):
    return make_user(username="dana", email="dana@staff.example", is_staff=True)


# The request form -------------------------------------------------------------------------
# ("Can't sign in?", which leads here, is in test_cant_sign_in.py.)

def test_the_form_links_the_code_of_conduct_it_asks_to_agree_to(client):
    page = client.get(NEW).content.decode()
    assert 'Staff handle requests under the <a href="/conduct/">code of conduct</a>' in page
    assert page.index('href="/conduct/"') < page.index('name="agreed"')


@pytest.mark.parametrize("signed_in", [False, True])
def test_the_code_of_conduct_is_open_to_everyone_and_in_every_footer(client, user, signed_in):
    if signed_in:
        sign_in(client, user)
    response = client.get("/conduct/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "<h1>Code of conduct</h1>" in page and "Ask to recover only an account" in page
    assert '<a href="/conduct/">Code of conduct</a>' in client.get("/").content.decode()
    assert client.post("/conduct/").status_code == 405


@pytest.mark.parametrize(("overrides", "message"), [
    ({"username": ""}, "Enter the account&#x27;s username or email address."),
    ({"contact_email": ""}, "Enter an address where we can reach you."),
    ({"contact_email": "not-an-address"}, "Enter a valid email address."),
    ({"description": ""}, "Tell us briefly what happened."),
    ({"description": "x" * 5001}, "at most 5000 characters"),
    ({"username": "a" * 51}, "at most 50 characters"),
    ({"username": f"{'a' * 40}@example.org"}, "at most 50 characters"),
    ({"agreed": None}, "Agree to the code of conduct"),
    ({"acknowledged": None}, "Acknowledge that review takes time"),
    ({"still_has": ["root_shell"]}, "Select a valid choice"),
])
def test_the_form_refuses_bad_input_and_changes_nothing(client, user, mail, overrides, message):
    response = client.post(NEW, form(**overrides))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not RecoveryRequest.objects.exists()
    assert not mail.messages


def test_the_honeypot_makes_nothing_but_looks_the_same(client, user, mail):
    response = client.post(NEW, form(homepage="http://spam.example"))
    assert response.status_code == 302 and response.url == CONFIRM
    assert not RecoveryRequest.objects.exists()
    assert not mail.messages


def test_the_contact_address_is_rate_limited(client, user, mail):
    """NIST N11 (throttling): one inbox cannot be flooded with codes."""
    for _ in range(services.CONTACT_LIMIT_COUNT):
        assert client.post(NEW, form()).status_code == 302
    response = client.post(NEW, form())
    assert response.status_code == 429
    assert "Too many recovery requests" in response.content.decode()
    assert RecoveryRequest.objects.count() == services.CONTACT_LIMIT_COUNT


def test_the_ip_is_rate_limited(client, user):
    for n in range(services.IP_LIMIT_COUNT):
        assert client.post(NEW, form(contact_email=f"c{n}@example.net")).status_code == 302
    response = client.post(NEW, form(contact_email="other@example.net"))
    assert response.status_code == 429
    assert RecoveryRequest.objects.count() == services.IP_LIMIT_COUNT


def test_known_and_unknown_usernames_look_the_same(make_client, user, mail):
    """ASVS 6.3.8, OWASP FP1: same status, page and mail whether or not the account exists,
    named by its username or by an address verified on it (an unverified one names nothing:
    anyone may have typed it into their account)."""
    user.emails.create(address="claimed@example.com", verified=False)
    names = ("ALICE", "nobody-here", "Alice@Example.org", "nobody@example.org",
             "claimed@example.com")
    seen = []
    for username in names:
        browser = make_client()
        mail.clear()
        response = browser.post(NEW, form(username=username), follow=True)
        message = mail.last("claimant@example.net")
        shape = (response.status_code, response.redirect_chain,
                 response.content.decode().replace(str(response.context["csrf_token"]), ""),
                 message["Subject"], CODE_RE.sub("", mail.text(message)).replace(username, "U"),
                 len(mail.messages))
        seen.append(shape)
        response = browser.post(CONFIRM, {"code": code_from(mail)}, follow=True)
        row = RecoveryRequest.objects.order_by("-pk").first()
        filed = mail.last("claimant@example.net")
        text = re.sub(r"\S*/status/\S+", "L", mail.text(filed)).replace(row.public_id, "R")
        seen[-1] += (response.status_code, response.content.decode(),
                     filed["Subject"].replace(row.public_id, "R"), text)
    assert all(shape == seen[0] for shape in seen)
    rows = RecoveryRequest.objects.order_by("pk")
    assert [row.user for row in rows] == [user, None, user, None, None]
    assert [row.username_claimed for row in rows] == list(names)  # what was typed, as typed
    assert all(row.contact_confirmed_at for row in rows)
    # The owner hears of the requests that named the account, whichever way they named it.
    assert SecurityEvent.objects.filter(user=user, kind=EventKind.RECOVERY_REQUESTED).count() == 2


# The contact code ---------------------------------------------------------------------------

def test_the_code_is_stored_as_a_digest_and_files_the_request(client, user, mail):
    """NIST N3: a 6-digit code from `secrets`, kept as a digest, valid for 24 hours."""
    client.post(NEW, form())
    code = code_from(mail)
    row = RecoveryRequest.objects.get()
    assert row.contact_code_digest and code not in row.contact_code_digest
    assert row.contact_confirmed_at is None and row.username_claimed == "alice"
    assert timedelta(hours=23) < row.contact_code_expires_at - timezone.now() <= timedelta(hours=24)
    assert client.post(CONFIRM, {"code": code}).url == "/recovery/request/filed/"
    row.refresh_from_db()
    assert row.contact_confirmed_at is not None and row.state == State.SUBMITTED


@pytest.mark.parametrize("code", ["000000", "12345", "abcdef", "", "1" * 40])
def test_a_wrong_code_files_nothing(client, user, mail, code):
    client.post(NEW, form())
    if code == "000000" and code_from(mail) == code:
        code = "000001"
    response = client.post(CONFIRM, {"code": code})
    assert response.status_code == 400
    row = RecoveryRequest.objects.get()
    assert row.contact_confirmed_at is None
    assert not mail.to("alice@example.org")
    assert not SecurityEvent.objects.filter(kind=EventKind.RECOVERY_REQUESTED).exists()


def test_an_expired_code_is_refused(client, user, mail):
    client.post(NEW, form())
    code = code_from(mail)
    RecoveryRequest.objects.update(contact_code_expires_at=timezone.now() - timedelta(seconds=1))
    response = client.post(CONFIRM, {"code": code})
    assert response.status_code == 400
    assert "expired" in response.content.decode()
    assert RecoveryRequest.objects.get().contact_confirmed_at is None


def test_five_wrong_codes_then_a_new_code_is_needed(client, user, mail):
    """NIST N3: a few attempts, then the code is dead even when right."""
    client.post(NEW, form())
    code = code_from(mail)
    wrong = "111111" if code != "111111" else "222222"
    for _ in range(services.CODE_ATTEMPTS):
        client.post(CONFIRM, {"code": wrong})
    response = client.post(CONFIRM, {"code": code})
    assert response.status_code == 400
    assert "too many wrong codes" in response.content.decode()
    assert RecoveryRequest.objects.get().contact_confirmed_at is None
    response = client.post(CONFIRM, {"new_code": "1"})
    assert "We sent a new code" in response.content.decode()
    new_code = code_from(mail)
    assert client.post(CONFIRM, {"code": new_code}).status_code == 302
    assert RecoveryRequest.objects.get().contact_confirmed_at is not None


def test_a_code_in_another_browser_does_nothing(client, make_client, user, mail):
    client.post(NEW, form())
    response = make_client().post(CONFIRM, {"code": code_from(mail)})
    assert response.status_code == 400
    assert RecoveryRequest.objects.get().contact_confirmed_at is None


# Filing ------------------------------------------------------------------------------------

def test_filing_mails_the_status_link_and_tells_the_account(client, user, mail):
    """NIST N8/N9: every verified address of the account hears, with a "this wasn't me"
    link; the requester gets the secret status link."""
    user.emails.create(address="alice@work.example", verified=True, verified_at=timezone.now())
    user.emails.create(address="alice@old.example", verified=False)
    recovery = file_request(client, mail)
    status = mail.link_to(mail.last("claimant@example.net"), "/recovery/request/status/")
    assert status == status_path(recovery)
    for address in ("alice@example.org", "alice@work.example"):
        notice = mail.last(address)
        assert "recover your account" in mail.text(notice)
        not_me = mail.link_to(notice, "/not-me/")
        assert not_me.startswith(f"/recovery/request/not-me/{recovery.public_id}/")
        assert "/status/" not in mail.text(notice)
    assert not mail.to("alice@old.example")
    event = SecurityEvent.objects.get(user=user, kind=EventKind.RECOVERY_REQUESTED)
    assert event.details == {"request": recovery.public_id}
    assert "not-me" not in mail.text(mail.last("claimant@example.net"))


def test_an_unknown_username_tells_no_account(client, user, mail):
    recovery = file_request(client, mail, username="nobody")
    assert recovery.user is None
    assert not mail.to("alice@example.org")
    assert not SecurityEvent.objects.filter(kind=EventKind.RECOVERY_REQUESTED).exists()


def test_a_double_submit_of_the_code_files_once(client, user, mail):
    client.post(NEW, form())
    code = code_from(mail)
    client.post(CONFIRM, {"code": code})
    response = client.post(CONFIRM, {"code": code})
    assert response.status_code == 400  # nothing pending in this browser any more
    assert SecurityEvent.objects.filter(kind=EventKind.RECOVERY_REQUESTED).count() == 1


# The status page --------------------------------------------------------------------------

def test_the_status_link_shows_the_request_and_no_account_fact(client, user, mail):
    recovery = file_request(client, mail)
    response = client.get(status_path(recovery))
    assert response.status_code == 200
    page = response.content.decode()
    assert recovery.public_id in page and "Submitted" in page
    assert "alice@example.org" not in page and "Alice Liddell" not in page
    assert response.headers["Referrer-Policy"] == "strict-origin"
    assert "no-cache" in response.headers["Cache-Control"]


def test_forged_and_other_requests_tokens_are_404(client, user, mail):
    """The status link of one request shows nothing of another."""
    mine = make_request(user)
    other = make_request(None)
    token = links.status_token(mine)
    forged = token[:-1] + ("1" if token.endswith("0") else "0")  # one hex digit changed
    for path in (
        f"/recovery/request/status/{other.public_id}/{token}/",
        f"/recovery/request/status/{mine.public_id}/{forged}/",
        f"/recovery/request/status/{mine.public_id}/{links.not_me_token(mine)}/",
        f"/recovery/request/status/{mine.public_id}/{'a' * 500}/",
        f"/recovery/request/status/{'x' * 500}/{token}/",
    ):
        assert client.get(path).status_code == 404
        assert client.post(path + "cancel/").status_code == 404
    assert client.get(status_path(mine)).status_code == 200


def test_an_unfiled_request_has_no_status_page(client, user):
    recovery = make_request(user, contact_confirmed_at=None)
    assert client.get(status_path(recovery)).status_code == 404


def test_rotating_the_nonce_revokes_old_links(client, user):
    recovery = make_request(user)
    old = status_path(recovery)
    RecoveryRequest.objects.filter(pk=recovery.pk).update(link_nonce="rotated")
    recovery.refresh_from_db()
    assert client.get(old).status_code == 404
    assert client.get(status_path(recovery)).status_code == 200


def test_pending_proofs_are_shown_with_instructions(client, user):
    recovery = make_request(user, state=State.AWAITING_PROOF)
    pending = RecoveryProof.objects.create(request=recovery, kind=ProofKind.API_TOKEN)
    RecoveryProof.objects.create(request=recovery, kind=ProofKind.PASSWORD,
                                 status=RecoveryProof.Status.SATISFIED)
    page = client.get(status_path(recovery)).content.decode()
    assert "An API token of the account" in page
    assert f"/recovery/proof/{pending.pk}/{recovery.public_id}/" in page
    # Given already: in the timeline, not among the proofs still to give.
    assert 'aria-label="The account&#x27;s password"' not in page
    assert "Proof accepted: The account&#x27;s password." in page


def test_messages_with_staff(client, user, staff):
    recovery = make_request(user, awaiting_requester_since=timezone.now())
    RecoveryMessage.objects.create(request=recovery, author="staff", staff=staff,
                                   body="Please push the branch.")
    path = status_path(recovery)
    assert "Please push the branch." in client.get(path).content.decode()
    response = client.post(path + "message/", {"body": "Done, <b>pushed</b>."})
    assert response.status_code == 302
    message = RecoveryMessage.objects.get(author="requester")
    assert message.body == "Done, <b>pushed</b>." and message.request == recovery
    recovery.refresh_from_db()
    assert recovery.awaiting_requester_since is None
    assert "Done, &lt;b&gt;pushed&lt;/b&gt;." in client.get(path).content.decode()


@pytest.mark.parametrize("body", ["", "   ", "x" * 5001])
def test_a_bad_message_is_refused(client, user, body):
    recovery = make_request(user)
    response = client.post(status_path(recovery) + "message/", {"body": body})
    assert response.status_code == 400
    assert not RecoveryMessage.objects.exists()


def test_the_requester_cancels(client, user, mail):
    recovery = make_request(user, contact="claimant@example.net")
    response = client.post(status_path(recovery) + "cancel/")
    assert response.status_code == 302
    recovery.refresh_from_db()
    assert recovery.state == State.CANCELLED
    assert recovery.transitions.get().actor == RecoveryTransition.Actor.REQUESTER
    # The requester's contact hears (a cancel made with a leaked link must reach them);
    # the owner has nothing to stop any more (issue 19).
    assert "cancelled" in mail.text(mail.last("claimant@example.net"))
    assert mail.to("alice@example.org") == []
    again = client.post(status_path(recovery) + "cancel/")
    assert again.status_code == 409
    assert "cannot become cancelled" in again.content.decode()


def test_get_never_cancels(client, user):
    recovery = make_request(user)
    assert client.get(status_path(recovery) + "cancel/").status_code == 405
    recovery.refresh_from_db()
    assert recovery.state == State.SUBMITTED


@pytest.mark.parametrize(("start", "allowed"), [
    (State.CLOSED_NO_RESPONSE, True), (State.SUBMITTED, False), (State.DENIED, False),
])
def test_reopen_only_after_closure_for_silence(client, user, start, allowed):
    recovery = make_request(user, state=start, reminders_sent=2)
    response = client.post(status_path(recovery) + "reopen/")
    recovery.refresh_from_db()
    if allowed:
        assert response.status_code == 302
        assert recovery.state == State.AWAITING_PROOF and recovery.reminders_sent == 0
    else:
        assert response.status_code == 409
        assert recovery.state == start


# "This wasn't me" -------------------------------------------------------------------------

def test_not_me_holds_freezes_blocks_and_alerts_staff(client, make_client, user, staff, mail):
    """DESIGN §5: "this wasn't me" never decides. One click (after a button, since mail
    scanners follow links) holds the request, blocks the account's recovery for
    RECOVERY_BLOCK, freezes the account and raises it to staff as urgent."""
    recovery = file_request(client, mail)
    owner = make_client()
    path = mail.link_to(mail.last("alice@example.org"), "/not-me/")
    page = owner.get(path)
    assert page.status_code == 200 and "This wasn't me" in page.content.decode()
    recovery.refresh_from_db()
    assert recovery.state == State.SUBMITTED and not recovery.urgent_since  # GET changes nothing
    done = owner.post(path)
    text = done.content.decode()
    assert done.status_code == 200 and "is on hold" in text and "check its security" in text.lower()
    recovery.refresh_from_db()
    user.refresh_from_db()
    assert (recovery.state, recovery.held_from) == (State.ON_HOLD, State.SUBMITTED)
    assert recovery.transitions.last().actor == RecoveryTransition.Actor.OWNER
    assert recovery.urgent_since is not None and user.is_frozen
    block = RecoveryBlock.objects.get(user=user)
    assert block.until > timezone.now() + timedelta(days=29)
    assert "URGENT" in mail.last("dana@staff.example")["Subject"]
    assert SecurityEvent.objects.filter(user=user, kind=EventKind.ACCOUNT_FROZEN).count() == 1
    owner.post(path)  # a second click changes nothing
    assert RecoveryBlock.objects.count() == 1 and len(mail.to("dana@staff.example")) == 1
    assert SecurityEvent.objects.filter(user=user, kind=EventKind.ACCOUNT_FROZEN).count() == 1


def test_a_request_filed_during_a_block_is_held_not_refused(client, make_client, user, mail):
    """Issue 15 attack 5: a request filed during a block is no longer cancelled in silence
    while its page says "Submitted": it is held at the top of the desk for staff to decide,
    and its requester reads that staff review it (not who objected)."""
    RecoveryBlock.objects.create(user=user, until=timezone.now() + timedelta(days=30), reason="x")
    mail.clear()
    recovery = file_request(make_client(), mail)
    assert (recovery.state, recovery.held_from) == (State.ON_HOLD, State.SUBMITTED)
    assert recovery.urgent_since is not None
    filed = next(m for m in mail.to("claimant@example.net") if "/status/" in mail.text(m))
    page = client.get(mail.link_to(filed, "/status/")).content.decode()
    assert "Waiting for staff review" in page
    assert "cancelled" not in page.lower() and "wasn't me" not in page.lower()
    # The owner still hears of it, with the link.
    assert "not-me" in mail.text(mail.last("alice@example.org"))


def test_an_expired_block_no_longer_refuses(client, user, mail):
    RecoveryBlock.objects.create(user=user, until=timezone.now() - timedelta(minutes=1), reason="x")
    assert file_request(client, mail).state == State.SUBMITTED


@pytest.mark.parametrize("which", ["forged", "status_token", "no_account"])
def test_a_bad_not_me_link_is_404_and_changes_nothing(client, user, which):
    recovery = make_request(None if which == "no_account" else user)
    token = {"forged": "0" * 64, "status_token": links.status_token(recovery),
             "no_account": links.not_me_token(recovery)}[which]
    path = f"/recovery/request/not-me/{recovery.public_id}/{token}/"
    assert client.get(path).status_code == 404
    assert client.post(path).status_code == 404
    recovery.refresh_from_db()
    assert recovery.state == State.SUBMITTED and not RecoveryBlock.objects.exists()


# CSRF -------------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", ["message/", "cancel/", "reopen/"])
def test_status_actions_need_the_csrf_token(user, suffix):
    recovery = make_request(user, state=State.CLOSED_NO_RESPONSE)
    strict = CommittingClient(enforce_csrf_checks=True)
    assert strict.post(status_path(recovery) + suffix, {"body": "hi"}).status_code == 403
    recovery.refresh_from_db()
    assert recovery.state == State.CLOSED_NO_RESPONSE and not RecoveryMessage.objects.exists()


def test_the_form_and_not_me_need_the_csrf_token(user, mail):
    strict = Client(enforce_csrf_checks=True)
    assert strict.post(NEW, form()).status_code == 403
    recovery = make_request(user)
    path = urlsplit(links.not_me_link(recovery)).path
    assert strict.post(path).status_code == 403
    assert not RecoveryBlock.objects.exists() and RecoveryRequest.objects.count() == 1


# Staff hear of the requester's messages --------------------------------------------------

def desk_path(recovery):
    return f"/desk/{recovery.public_id}/"


def post_message_by(via, client, recovery, body):
    """Post ``body`` as the requester, on the status page or through the JSON API."""
    if via == "page":
        return client.post(status_path(recovery) + "message/", {"body": body})
    credential = f"{recovery.public_id}.{links.status_token(recovery)}"
    return client.post("/api/v1/recovery/status/messages", {"body": body},
                       content_type="application/json",
                       headers={"Authorization": f"Bearer {credential}"})


@pytest.fixture
def more_staff(make_user):
    erin = make_user(username="erin", email="erin@staff.example", is_staff=True)
    gone = make_user(username="gone", email="gone@staff.example", is_staff=True)
    gone.is_active = False
    gone.save()
    return erin


@pytest.mark.parametrize("via", ["page", "api"])
def test_the_assigned_staff_member_hears_of_a_message(client, user, staff, more_staff, mail,
                                                      via):
    """Issue 5: the one working on the request is told, with a link to its desk page; the
    requester's text is not relayed by mail (it is read at the desk, behind sign-in)."""
    recovery = make_request(user, assigned_to=more_staff)
    response = post_message_by(via, client, recovery, "Pushed it, see https://evil.example/")
    assert response.status_code in (201, 302)
    notice = mail.last("erin@staff.example")
    assert f"{recovery.public_id}: the requester wrote" in notice["Subject"]
    assert mail.link_to(notice, "/desk/") == desk_path(recovery)
    assert "evil.example" not in mail.text(notice) + mail.html(notice)
    assert mail.to("dana@staff.example") == [] and mail.to("alice@example.org") == []


@pytest.mark.parametrize("via", ["page", "api"])
def test_without_an_assignee_every_active_staff_member_hears(client, user, staff, more_staff,
                                                             mail, via):
    recovery = make_request(user)
    post_message_by(via, client, recovery, "Any news?")
    for address in ("dana@staff.example", "erin@staff.example"):
        assert mail.link_to(mail.last(address), "/desk/") == desk_path(recovery)
    assert mail.to("gone@staff.example") == [] and mail.to("alice@example.org") == []


def test_an_assignee_who_left_staff_is_passed_over(client, user, staff, more_staff, mail):
    recovery = make_request(user, assigned_to=more_staff)
    more_staff.is_staff = False
    more_staff.save()
    post_message_by("page", client, recovery, "Hello?")
    assert len(mail.to("dana@staff.example")) == 1 and mail.to("erin@staff.example") == []


def test_a_refused_message_tells_nobody(client, user, staff, mail):
    recovery = make_request(user)
    assert post_message_by("page", client, recovery, "   ").status_code == 400
    assert post_message_by("api", client, recovery, "x" * 5001).status_code == 422
    assert mail.messages == []


def test_a_flood_of_messages_does_not_flood_staff(client, user, staff, mail):
    """A status-link holder cannot fill the staff inboxes; every message is still kept."""
    recovery = make_request(user)
    for n in range(8):
        post_message_by("page", client, recovery, f"message {n}")
    assert RecoveryMessage.objects.filter(author="requester").count() == 8
    assert len(mail.to("dana@staff.example")) == 6


def test_the_not_me_alert_links_to_the_requests_desk_page(client, make_client, user, staff,
                                                         mail):
    recovery = file_request(client, mail)
    make_client().post(mail.link_to(mail.last("alice@example.org"), "/not-me/"))
    alert = mail.last("dana@staff.example")
    assert "URGENT: recovery of alice disputed" in alert["Subject"]
    assert mail.link_to(alert, "/desk/") == desk_path(recovery)
    assert 'href="http' in mail.html(alert) and desk_path(recovery) in mail.html(alert)
