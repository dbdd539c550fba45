"""Bounces (issue 17): a delivery-status notification (RFC 3464) for mail Relatch sent marks
the address "not receiving" — over a real SMTP exchange on loopback, or the signed webhook.

The DSNs are built with the standard library as a mail server builds them (multipart/report;
report-type=delivery-status, with the returned message's headers) and are sent back to the
return path the delivered message really carried (its SMTP envelope sender).
"""

import html
import io
import json
import logging
import re
import smtplib
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, make_msgid
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.db import transaction
from django.test import TestCase
from django.utils import timezone

from relatch.accounts.emails.bounces import Outcome, receive_dsn
from relatch.accounts.emails.hooks import signature
from relatch.accounts.management.commands import bounce_listener
from relatch.accounts.models import Bounce, Email, User
from relatch.accounts.notices import verified_addresses
from relatch.accounts.passwords.reset import reset_address
from relatch.audit.models import EventKind, SecurityEvent
from relatch.notify import verp
from relatch.notify.models import OutgoingEmail
from relatch.notify.services import send_mail
from relatch.recovery.models import ProofKind, RecoveryProof
from relatch.recovery.proofs.evidence import verified_account_emails
from relatch.recovery.sources import judge
from tests.conftest import CommittingClient, run_pending_tasks, sign_in, use_smtp_port
from tests.notify.envelopes import Delivery, EnvelopeSink, envelope_sink
from tests.recovery.requests import make_request
from tests.serving import (
    RELATCH,
    direct_children,
    free_port,
    is_running,
    relatch_env,
    running_server,
    wait_for,
)

ALICE, BACKUP = "alice@example.org", "alice@backup.example.net"
HOOK = "/hooks/bounces"
SECRET = "hook-secret-" + "s" * 32
WARNING_SUBJECT = "Mail to an address of your Relatch account bounced"
ON_PAGE = "Mail to this address bounced ("


# -- a mail server's view of things ------------------------------------------------------------


def dsn(delivery: Delivery, *, recipient: str | None = None, action: str = "failed",
        status: str = "5.1.1", diagnostic: str | None = None, to: str | None = None,
        original_recipient: str | None = None) -> bytes:
    """The DSN a mail server sends back when it could not deliver ``delivery`` (RFC 3464):
    to the envelope sender, from the null sender, with the returned message's headers."""
    recipient = recipient or delivery.rcpt_tos[0]
    if diagnostic is None:
        diagnostic = (f"smtp; 550 5.1.1 <{recipient}>: Recipient address rejected: User unknown"
                      if status.startswith("5") else "smtp; 452 4.2.2 Mailbox full")
    report = MIMEMultipart("report", report_type="delivery-status")
    report["From"] = "Mail Delivery System <MAILER-DAEMON@mx.example.org>"
    report["To"] = to or delivery.mail_from
    report["Subject"] = ("Undelivered Mail Returned to Sender" if action == "failed"
                         else "Delayed Mail (still being retried)")
    report["Date"] = format_datetime(timezone.now())
    report["Message-ID"] = make_msgid(domain="mx.example.org")
    report["Auto-Submitted"] = "auto-replied"
    report.attach(MIMEText("This is the mail system at host mx.example.org.\n\n"
                           "I'm sorry to have to inform you that your message could not\n"
                           "be delivered to one or more recipients.\n"))
    per_message, per_recipient = Message(), Message()
    per_message["Reporting-MTA"] = "dns; mx.example.org"
    per_message["Arrival-Date"] = format_datetime(timezone.now())
    per_recipient["Final-Recipient"] = f"rfc822; {recipient}"
    if original_recipient:
        per_recipient["Original-Recipient"] = f"rfc822; {original_recipient}"
    per_recipient["Action"] = action
    per_recipient["Status"] = status
    per_recipient["Remote-MTA"] = "dns; mail.example.org"
    per_recipient["Diagnostic-Code"] = diagnostic
    status_part = Message()
    status_part["Content-Type"] = "message/delivery-status"
    status_part["Content-Description"] = "Delivery report"
    status_part.set_payload([per_message, per_recipient])
    report.attach(status_part)
    headers = delivery.raw.split(b"\r\n\r\n", 1)[0].decode()
    returned = MIMEText(headers, "rfc822-headers")
    returned["Content-Description"] = "Undelivered Message Headers"
    report.attach(returned)
    return report.as_bytes(policy=report.policy.clone(linesep="\r\n"))  # SMTP's line ends


def send_over_smtp(port: int, raw: bytes, to: str) -> tuple[int, str]:
    """Hand ``raw`` to the listener as a mail server does: MAIL FROM:<> (a DSN's sender is
    empty), RCPT TO the return path. The answer to DATA."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.ehlo("mx.example.org")
        assert smtp.mail("")[0] == 250
        assert smtp.rcpt(to)[0] == 250
        code, reply = smtp.data(raw)
    return code, reply.decode()


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def sink(settings: Any) -> Iterator[EnvelopeSink]:
    """Relatch's outgoing mail goes to a loopback SMTP server that keeps the envelopes."""
    with envelope_sink() as server:
        use_smtp_port(settings, server.port)
        yield server


@pytest.fixture
def alice(make_user: Any) -> User:
    """alice: two verified addresses, both verified a month ago."""
    user = make_user(username="alice", email=ALICE)
    Email.objects.create(user=user, address=BACKUP, verified=True, verified_at=timezone.now())
    Email.objects.filter(user=user).update(verified_at=timezone.now() - timedelta(days=30))
    return user


@pytest.fixture
def listener(settings: Any) -> Iterator[int]:
    """``relatch bounce_listener`` on a free loopback port, in a thread (the command object
    is stopped through the event its TERM handler sets)."""
    port = free_port()
    settings.BOUNCE_LISTEN = ("127.0.0.1", port)
    command = bounce_listener.Command(stdout=io.StringIO())
    failures: list[BaseException] = []

    def run() -> None:
        from django.core.management import call_command

        try:
            call_command(command)
        except BaseException as exc:  # shown by the assertion below
            failures.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert wait_for(lambda: failures or _accepts(port), 20) and not failures, failures
    assert f"Taking bounces over SMTP at 127.0.0.1:{port}" in command.stdout._out.getvalue()
    yield port
    command.stop.set()
    thread.join(timeout=20)
    assert not thread.is_alive() and not failures, failures


def deliver(address: str, template: str = "test_message") -> OutgoingEmail:
    """Queue a message to ``address`` and let the worker deliver it over SMTP."""
    with TestCase.captureOnCommitCallbacks(execute=True), transaction.atomic():
        (row,) = send_mail(to=[address], template=template, context={"name": "Alice"})
    run_pending_tasks()
    return row


def receive(raw: bytes, recipients: list[str] | None = None) -> str:
    """``receive_dsn`` as the listener and the webhook call it; queued mail then goes out."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        outcome = receive_dsn(raw=raw, recipients=recipients or [])
    run_pending_tasks()
    return outcome


def shown(response: Any) -> str:
    """A page's text as a person reads it: no tags, entities decoded, spaces collapsed."""
    assert response.status_code == 200, response.status_code
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", response.text)).split())


def state(address: str) -> Email:
    return Email.objects.get(address=address)


def nothing_changed(user: User) -> bool:
    return (not Email.objects.filter(user=user, not_receiving_since__isnull=False).exists()
            and not SecurityEvent.objects.filter(user=user,
                                                 kind=EventKind.EMAIL_NOT_RECEIVING).exists())


# -- a real DSN over SMTP -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_real_dsn_over_smtp_marks_the_address_and_the_owner_sees_it(
        alice, sink, listener, client):
    """Issue 17, done when: a bounced message (a real DSN delivered over SMTP) marks the
    address, and the owner sees it on the account page. The other address is warned (the
    account's verified addresses hear of a change to what protects it: ASVS 6.3.7)."""
    row = deliver(ALICE)
    sent = sink.last(ALICE)
    assert sent.mail_from == verp.return_path(row.pk)  # the envelope sender names the message

    code, reply = send_over_smtp(listener, dsn(sent), to=sent.mail_from)
    assert code == 250 and "marked" in reply, reply

    bounced = state(ALICE)
    assert bounced.verified and bounced.not_receiving_since is not None
    assert bounced.bounce_detail.startswith("5.1.1: 550 5.1.1")
    assert "User unknown" in bounced.bounce_detail
    bounce = Bounce.objects.get()
    assert (bounce.email, bounce.address, bounce.hard, bounce.status) == (
        bounced, ALICE, True, "5.1.1")
    assert "Recipient address rejected" in bounce.diagnostic
    event = SecurityEvent.objects.get(user=alice, kind=EventKind.EMAIL_NOT_RECEIVING)
    assert event.details["address"] == ALICE
    # The other address is told; the bounced one hears no more security mail.
    run_pending_tasks()
    warning = sink.last(BACKUP)
    assert str(warning.message["Subject"]) == WARNING_SUBJECT
    text = warning.message.get_body(preferencelist=("plain",)).get_content()
    assert ALICE in text and "5.1.1" in text and "/account/emails/" in text
    assert verified_addresses(alice) == [BACKUP]
    assert not [d for d in sink.to(ALICE) if WARNING_SUBJECT in str(d.message["Subject"])]

    sign_in(client, alice)
    page = shown(client.get("/account/emails/"))
    assert (f"{ON_PAGE}{bounced.bounce_detail}) just now: we "
            "send it no security mail. Verify it again once it works, or remove it.") in page
    assert "Not receiving" in page and "Send a verification link" in page
    overview = shown(client.get("/account/"))
    assert f"Mail to {ALICE} bounced" in overview


@pytest.mark.django_db(transaction=True)
def test_the_listener_takes_anything_and_changes_nothing_for_junk(alice, sink, listener):
    """Garbage, a plain message, a forged return path: 250 (a DSN is never bounced back),
    logged, nothing changed."""
    deliver(ALICE)
    sent = sink.last(ALICE)
    forged = "bounces+1-0123456789abcdef0123@example.org"
    for raw, to in [(b"\x00\xff\xfe not a message \x00", sent.mail_from),
                    (b"Subject: hello\r\n\r\nJust a letter.\r\n", sent.mail_from),
                    (dsn(sent, to=forged), forged)]:
        code, _ = send_over_smtp(listener, raw, to=to)
        assert code == 250
    assert nothing_changed(alice) and not Bounce.objects.exists()


# -- the webhook --------------------------------------------------------------------------------


def post_hook(client: Any, body: bytes, *, sign_with: str | None = SECRET,
              content_type: str = "message/rfc822", **headers: str) -> Any:
    if sign_with is not None:
        headers["HTTP_X_RELATCH_SIGNATURE"] = signature(sign_with, body)
    return client.post(HOOK, body, content_type=content_type, **headers)


@pytest.mark.django_db
def test_the_webhook_with_a_good_signature_marks_the_address(alice, sink, settings):
    """A relay has no cookie and no CSRF token: its signature is the authentication."""
    settings.BOUNCE_WEBHOOK_SECRET = SECRET
    deliver(ALICE)
    relay = CommittingClient(enforce_csrf_checks=True)
    response = post_hook(relay, dsn(sink.last(ALICE)))
    assert response.status_code == 200 and response.json() == {"outcome": "marked"}
    assert state(ALICE).not_receiving_since is not None
    assert Bounce.objects.get().hard is True
    assert str(sink.last(BACKUP).message["Subject"]) == WARNING_SUBJECT


@pytest.mark.django_db
@pytest.mark.parametrize("sign_with", [None, "another-secret", ""])
def test_the_webhook_refuses_a_missing_or_wrong_signature(alice, sink, client, settings,
                                                          sign_with):
    settings.BOUNCE_WEBHOOK_SECRET = SECRET
    deliver(ALICE)
    body = dsn(sink.last(ALICE))
    response = post_hook(client, body, sign_with=sign_with)
    assert response.status_code == 403
    # A signature for other bytes does not carry over either.
    response = post_hook(client, body + b"\r\n", HTTP_X_RELATCH_SIGNATURE=signature(SECRET, body),
                         sign_with=None)
    assert response.status_code == 403
    assert nothing_changed(alice) and not Bounce.objects.exists()


@pytest.mark.django_db
def test_the_webhook_does_not_exist_without_its_secret(alice, client, settings):
    settings.BOUNCE_WEBHOOK_SECRET = ""
    response = post_hook(client, b"anything", sign_with="")
    assert response.status_code == 404


@pytest.mark.django_db
def test_the_webhook_takes_posts_only_and_limits_the_size(client, settings):
    settings.BOUNCE_WEBHOOK_SECRET = SECRET
    assert client.get(HOOK).status_code == 405
    settings.BOUNCE_MAX_BYTES = 1000
    assert post_hook(client, b"x" * 1001).status_code == 413
    assert post_hook(client, b"x" * 1000).status_code == 200  # signed: judged, and ignored


@pytest.mark.django_db
def test_the_webhook_takes_a_bare_delivery_status_with_the_envelope_recipient(
        alice, sink, client, settings):
    """A relay that keeps only the message/delivery-status part names the return path the
    bounce came to in X-Relatch-Envelope-To."""
    settings.BOUNCE_WEBHOOK_SECRET = SECRET
    deliver(ALICE)
    sent = sink.last(ALICE)
    body = (b"Reporting-MTA: dns; relay.example.net\r\n\r\n"
            b"Final-Recipient: rfc822; " + ALICE.encode() + b"\r\n"
            b"Action: failed\r\nStatus: 5.2.1\r\nDiagnostic-Code: smtp; 550 5.2.1 disabled\r\n")
    response = post_hook(client, body, content_type="message/delivery-status",
                         HTTP_X_RELATCH_ENVELOPE_TO=sent.mail_from)
    assert response.json() == {"outcome": "marked"}
    assert state(ALICE).bounce_detail == "5.2.1: 550 5.2.1 disabled"


@pytest.mark.django_db
@pytest.mark.parametrize("body", [
    b"",
    b"\x00\xff\xfe\xfd" * 50,
    b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x",
    b"Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n",
    "Subject: \udcff\r\n\r\n".encode("utf-8", "surrogateescape"),
])
def test_malformed_bytes_are_logged_and_change_nothing(alice, client, settings, caplog, body):
    """Never a 500: the relay is answered, the log says why, nothing changed."""
    settings.BOUNCE_WEBHOOK_SECRET = SECRET
    with caplog.at_level(logging.WARNING, logger="relatch.accounts.emails.bounces"):
        response = post_hook(client, body)
    assert response.status_code == 200
    assert response.json()["outcome"] in {Outcome.MALFORMED, Outcome.NO_RETURN_PATH}
    assert caplog.records, "the refusal is logged"
    assert nothing_changed(alice) and not Bounce.objects.exists()


# -- who the bounce is about -------------------------------------------------------------------


@pytest.mark.django_db
def test_a_forged_return_path_changes_nothing(alice, sink, caplog, settings):
    """Without the secret key nobody can name a message: a guessed MAC, a real MAC moved to
    another message, a token made with another key."""
    row = deliver(ALICE)
    sent = sink.last(ALICE)
    genuine = sent.mail_from
    mac = genuine.partition("-")[2].partition("@")[0]
    forgeries = [
        genuine.replace(mac, "0" * len(mac)),
        genuine.replace(f"+{row.pk}-", f"+{row.pk + 1}-"),
    ]
    real_key = settings.SECRET_KEY
    settings.SECRET_KEY = "attacker-key-" + "a" * 40
    forgeries.append(verp.return_path(row.pk))
    settings.SECRET_KEY = real_key
    for forged in forgeries:
        with caplog.at_level(logging.WARNING):
            assert receive(dsn(sent, to=forged), [forged]) == Outcome.FORGED
        assert "forged" in caplog.text
    assert receive(dsn(sent, to="postmaster@example.org")) == Outcome.NO_RETURN_PATH
    assert nothing_changed(alice) and not Bounce.objects.exists()


@pytest.mark.django_db
def test_a_dsn_for_another_recipient_changes_nothing(alice, make_user, sink, caplog):
    """The recipient is the message's; a DSN naming someone else (Bob, whose mail was never
    returned to this path) is logged and ignored."""
    bob = make_user(username="bob", email="bob@example.org")
    deliver(ALICE)
    sent = sink.last(ALICE)
    with caplog.at_level(logging.WARNING):
        assert receive(dsn(sent, recipient="bob@example.org")) == Outcome.OTHER_RECIPIENT
    assert "another recipient" in caplog.text
    assert nothing_changed(alice) and nothing_changed(bob) and not Bounce.objects.exists()


@pytest.mark.django_db
def test_an_alias_rewritten_by_the_receiving_side_still_counts(alice, sink):
    """Original-Recipient names the address Relatch gave when the receiving server mapped it
    to another mailbox (RFC 3464 §2.3.1)."""
    deliver(ALICE)
    sent = sink.last(ALICE)
    raw = dsn(sent, recipient="alice.liddell@mailhost.example.org", original_recipient=ALICE)
    assert receive(raw) == Outcome.MARKED


@pytest.mark.django_db
def test_a_success_report_is_not_a_bounce(alice, sink):
    deliver(ALICE)
    sent = sink.last(ALICE)
    for action, status in [("delivered", "2.0.0"), ("relayed", "2.0.0"), ("expanded", "2.0.0")]:
        assert receive(dsn(sent, action=action, status=status)) == Outcome.NOT_A_FAILURE
    assert receive(dsn(sent, status="garbage")) == Outcome.MALFORMED
    assert nothing_changed(alice) and not Bounce.objects.exists()


@pytest.mark.django_db
def test_a_bounce_of_an_unverified_address_is_recorded_and_marks_nothing(make_user, sink):
    """A verification mail that bounced: the address was never trusted; nothing to take back."""
    newbie = make_user(username="newbie", email="newbie@exampel.org", verified=False)
    deliver("newbie@exampel.org")
    assert receive(dsn(sink.last("newbie@exampel.org"))) == Outcome.RECORDED
    assert Bounce.objects.get().address == "newbie@exampel.org"
    assert nothing_changed(newbie)


# -- soft bounces ---------------------------------------------------------------------------------


def soft_bounce(sink: EnvelopeSink, *, days_ago: int = 0) -> str:
    """One message to alice delayed (4.2.2), its report received ``days_ago``."""
    deliver(ALICE)
    outcome = receive(dsn(sink.last(ALICE), action="delayed", status="4.2.2"))
    Bounce.objects.filter(pk=Bounce.objects.latest("pk").pk).update(
        received_at=timezone.now() - timedelta(days=days_ago))
    return outcome


@pytest.mark.django_db
def test_three_soft_bounces_in_seven_days_count_as_a_hard_one(alice, sink):
    assert soft_bounce(sink, days_ago=6) == Outcome.RECORDED
    assert soft_bounce(sink, days_ago=3) == Outcome.RECORDED
    assert state(ALICE).not_receiving_since is None
    assert soft_bounce(sink) == Outcome.MARKED
    bounced = state(ALICE)
    assert bounced.bounce_detail == "3 delayed deliveries in 7 days, the last 4.2.2: " \
                                   "452 4.2.2 Mailbox full"
    assert list(Bounce.objects.values_list("hard", flat=True)) == [False, False, False]
    assert str(sink.last(BACKUP).message["Subject"]) == WARNING_SUBJECT


@pytest.mark.django_db
def test_two_soft_bounces_or_three_spread_over_more_than_seven_days_do_not(alice, sink):
    assert soft_bounce(sink, days_ago=8) == Outcome.RECORDED  # too old to count
    assert soft_bounce(sink, days_ago=5) == Outcome.RECORDED
    assert soft_bounce(sink) == Outcome.RECORDED
    assert Bounce.objects.count() == 3
    assert nothing_changed(alice)


@pytest.mark.django_db
def test_the_same_report_counts_once(alice, sink):
    """A repeated (or replayed) report of one message's delay is one soft bounce, not three;
    its final failure afterwards is a hard bounce."""
    deliver(ALICE)
    sent = sink.last(ALICE)
    delayed = dsn(sent, action="delayed", status="4.4.1")
    assert [receive(delayed) for _ in range(3)] == [
        Outcome.RECORDED, Outcome.REPEATED, Outcome.REPEATED]
    assert nothing_changed(alice) and Bounce.objects.count() == 1
    assert receive(dsn(sent)) == Outcome.MARKED
    assert receive(dsn(sent)) == Outcome.REPEATED
    assert Bounce.objects.count() == 2


# -- verifying it again ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_verifying_the_address_again_clears_it(alice, sink, client):
    deliver(ALICE)
    first = sink.last(ALICE)
    deliver(ALICE)
    second = sink.last(ALICE)
    assert receive(dsn(first)) == Outcome.MARKED
    sign_in(client, alice)
    email = state(ALICE)

    response = client.post(f"/account/emails/{email.pk}/resend/")
    assert response.status_code == 302
    verification = sink.last(ALICE)  # a verification link still goes to it
    text = verification.message.get_body(preferencelist=("plain",)).get_content()
    link = urlsplit(next(w for w in text.split() if "/account/emails/verify/" in w)).path
    assert "Verify" in client.get(link).text
    assert client.post(link).status_code == 302

    again = state(ALICE)
    assert (again.not_receiving_since, again.bounce_detail, again.verified) == (None, "", True)
    assert again.verified_at > timezone.now() - timedelta(minutes=1)
    assert ALICE in verified_addresses(alice)
    assert ON_PAGE not in client.get("/account/emails/").text
    assert f"Mail to {ALICE} bounced" not in client.get("/account/").text
    assert SecurityEvent.objects.filter(user=alice, kind=EventKind.EMAIL_VERIFIED).exists()
    # The link works once: the address is verified and receiving now.
    used = client.post(link)
    assert used.status_code == 400 and "already used" in used.text
    # A late report about mail sent before it was verified again is kept, and marks nothing:
    # the address has been shown to receive mail since.
    assert receive(dsn(second)) == Outcome.RECORDED
    assert state(ALICE).not_receiving_since is None
    # Mail sent after that does count.
    deliver(ALICE)
    assert receive(dsn(sink.last(ALICE))) == Outcome.MARKED


@pytest.mark.django_db
def test_a_working_address_cannot_be_sent_another_verification_link(alice, client):
    sign_in(client, alice)
    response = client.post(f"/account/emails/{state(ALICE).pk}/resend/")
    assert response.status_code == 400 and "already verified" in response.text


# -- what a not-receiving address is no longer used for ----------------------------------------


@pytest.mark.django_db
def test_a_not_receiving_address_gets_no_reset_link_and_proves_no_mailbox(alice, sink):
    deliver(ALICE)
    assert receive(dsn(sink.last(ALICE))) == Outcome.MARKED
    assert reset_address(user=alice, identifier=ALICE) is None
    assert reset_address(user=alice, identifier="alice") == BACKUP
    assert [e.address for e in verified_account_emails(alice)] == [BACKUP]

    recovery = make_request(alice, created_at=timezone.now() - timedelta(days=1))
    RecoveryProof.objects.create(request=recovery, kind=ProofKind.ACCOUNT_EMAIL,
                                 evidence={"address_id": state(ALICE).pk},
                                 status=RecoveryProof.Status.SATISFIED, checked_at=timezone.now())
    item = judge(recovery)[-1]
    assert item.counts is False and "bounced" in item.why


# -- relatch serve ---------------------------------------------------------------------------------


SETTINGS_SCRIPT = """
import json, sys
import relatch.settings as s
print(json.dumps({name: getattr(s, name) for name in sys.argv[1:]}))
"""
SHELL_STATE = ("from relatch.accounts.models import Email; "
               "print(Email.objects.get(address='grace@example.org').bounce_detail or 'none')")


@pytest.mark.own_database
@pytest.mark.slow
def test_serve_starts_and_stops_the_bounce_listener_with_the_others(tmp_path):
    """RELATCH_BOUNCE_LISTEN set: ``relatch serve`` runs the listener as a third child,
    wired to the same database, and stops it with the web server and the worker."""
    bounce_port = free_port()
    with envelope_sink() as sink, running_server(
            tmp_path, RELATCH_BOUNCE_LISTEN=f"127.0.0.1:{bounce_port}",
            RELATCH_EMAIL_URL=f"smtp://127.0.0.1:{sink.port}") as server:
        started = direct_children(server.process.pid)
        assert sum("bounce_listener" in command for command in started.values()) == 1, started
        listening = f"Taking bounces over SMTP at 127.0.0.1:{bounce_port}"
        assert wait_for(lambda: listening in server.output(), 60), server.output()
        assert _accepts(bounce_port)

        server.create_account("grace")
        assert server.relatch("sendtestmail", "grace@example.org").returncode == 0
        assert wait_for(lambda: sink.to("grace@example.org"), 45), server.output()
        sent = sink.last("grace@example.org")
        assert sent.mail_from.startswith("bounces+") and sent.mail_from.endswith("@localhost")
        code, _ = send_over_smtp(bounce_port, dsn(sent), to=sent.mail_from)
        assert code == 250
        done = server.relatch("shell", "-c", SHELL_STATE)
        assert "\n5.1.1: 550 5.1.1 <grace@example.org>" in done.stdout, done.stderr

        children = server.children()
        assert server.stop(timeout=25) == 0
        assert wait_for(lambda: not any(is_running(pid) for pid in children), 20)
        assert not _accepts(bounce_port)


@pytest.mark.own_database
@pytest.mark.slow
def test_serve_refuses_a_bounce_port_in_use_plainly(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [str(RELATCH), "serve", "--port", str(free_port())],
            env=relatch_env(tmp_path / "data", RELATCH_BOUNCE_LISTEN=f"127.0.0.1:{port}"),
            capture_output=True, text=True, timeout=60, check=False,
        )
    assert done.returncode == 2, done.stderr
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.own_database
@pytest.mark.parametrize(("env", "expected"), [
    ({}, {"BOUNCE_LISTEN": None, "BOUNCE_DOMAIN": "index.example.org", "VERP_ENABLED": True,
          "BOUNCE_WEBHOOK_SECRET": ""}),
    ({"RELATCH_FROM_EMAIL": "Index <robot@mail.example.net>"},
     {"BOUNCE_DOMAIN": "mail.example.net"}),
    ({"RELATCH_BOUNCE_DOMAIN": "Bounces.Example.org", "RELATCH_BOUNCE_LISTEN": "127.0.0.1:2525",
      "RELATCH_BOUNCE_WEBHOOK_SECRET": "s3"},
     {"BOUNCE_DOMAIN": "bounces.example.org", "BOUNCE_LISTEN": ["127.0.0.1", 2525],
      "BOUNCE_WEBHOOK_SECRET": "s3"}),
    ({"RELATCH_BOUNCE_LISTEN": "[::1]:2525"}, {"BOUNCE_LISTEN": ["::1", 2525]}),
    ({"RELATCH_BOUNCE_DOMAIN": "off"}, {"VERP_ENABLED": False}),
])
def test_the_bounce_settings_come_from_the_environment(tmp_path, env, expected):
    done = subprocess.run(
        [sys.executable, "-c", SETTINGS_SCRIPT, *expected],
        env=relatch_env(tmp_path / "data", RELATCH_SECRET_KEY="k" * 50,
                        RELATCH_BASE_URL="https://index.example.org", **env),
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == expected


@pytest.mark.own_database
@pytest.mark.parametrize("value", ["2525", "localhost", "127.0.0.1:", "127.0.0.1:0",
                                   "127.0.0.1:99999", ":2525", "127.0.0.1:smtp"])
def test_a_bad_bounce_listen_address_is_refused_plainly(tmp_path, value):
    done = subprocess.run(
        [sys.executable, "-c", "import relatch.settings"],
        env=relatch_env(tmp_path / "data", RELATCH_SECRET_KEY="k" * 50,
                        RELATCH_BOUNCE_LISTEN=value),
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode != 0
    assert f"RELATCH_BOUNCE_LISTEN must be HOST:PORT (e.g. 127.0.0.1:2525), not {value!r}" \
        in done.stderr
