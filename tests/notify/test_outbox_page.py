"""The outbox page: without SMTP, mail is readable in the browser, and only then (issue 2 §9)."""

from email.message import EmailMessage
from pathlib import Path

import pytest
from django.db import transaction
from django.test import TestCase

from relatch.notify.services import send_mail
from tests.conftest import run_pending_tasks

pytestmark = pytest.mark.django_db


@pytest.fixture
def outbox(settings, tmp_path) -> Path:
    """Mail goes to the outbox (as when RELATCH_EMAIL_URL is unset)."""
    settings.MAILERS = {"default": {"BACKEND": "relatch.notify.outbox.OutboxEmailBackend"}}
    settings.OUTBOX_DIR = tmp_path / "outbox"
    settings.OUTBOX_ENABLED = True
    return settings.OUTBOX_DIR


def queue_test_message(to: str = "ada@example.org") -> None:
    with TestCase.captureOnCommitCallbacks(execute=True), transaction.atomic():
        send_mail(to=[to], template="test_message", context={"name": "Ada"},
                  link_builder="tests.notify.links.example_link", link_args={"word": "kumquat"})
    run_pending_tasks()


def only_message_name(outbox: Path) -> str:
    (path,) = outbox.glob("*.eml")
    return path.name


def write_eml(path: Path, *, text: str, html: str = "", date: str = "") -> None:
    message = EmailMessage()
    message["Subject"] = "Hand-made"
    message["To"] = "ada@example.org"
    if date:
        message["Date"] = date
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(message.as_bytes())


def test_a_queued_message_is_listed_and_readable_with_its_link(client, outbox, mail):
    queue_test_message()
    assert mail.messages == []  # nothing went to SMTP
    listing = client.get("/dev/outbox/")
    assert listing.status_code == 200
    body = listing.content.decode()
    assert "Test message from Relatch" in body and "ada@example.org" in body

    name = only_message_name(outbox)
    assert f"/dev/outbox/{name}/" in body
    page = client.get(f"/dev/outbox/{name}/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Hello Ada, this is a test message from Relatch." in text
    # The link is there and clickable.
    assert 'href="http://testserver/kumquat-secret"' in text
    assert "no-store" in page["Cache-Control"]


def test_the_html_part_is_served_in_a_sandbox(client, outbox):
    queue_test_message()
    name = only_message_name(outbox)
    assert f"/dev/outbox/{name}/html/" in client.get(f"/dev/outbox/{name}/").content.decode()
    response = client.get(f"/dev/outbox/{name}/html/")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert "<p>Hello Ada" in response.content.decode()
    csp = [d.strip() for d in response["Content-Security-Policy"].split(";")]
    assert csp[0] == "sandbox"  # no scripts, no same-origin access, no forms
    assert "default-src 'none'" in csp
    assert "script-src" not in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"


def test_mail_text_is_shown_escaped(client, outbox):
    """A message's text is data, never markup on the site's own origin."""
    write_eml(outbox / "20260101T000000000000-abcd1234.eml",
              text="<script>alert(1)</script> <img src=x onerror=alert(2)>")
    body = client.get("/dev/outbox/20260101T000000000000-abcd1234.eml/").content.decode()
    assert "<script>alert(1)" not in body and "&lt;script&gt;alert(1)" in body
    assert "<img src=x" not in body


def test_a_hand_edited_message_with_a_bad_date_does_not_break_the_page(client, outbox):
    write_eml(outbox / "20260101T000000000000-abcd1234.eml", text="Hello", date="not a date")
    assert client.get("/dev/outbox/").status_code == 200
    page = client.get("/dev/outbox/20260101T000000000000-abcd1234.eml/")
    assert page.status_code == 200 and "Hello" in page.content.decode()
    # No HTML part: no HTML page.
    assert client.get("/dev/outbox/20260101T000000000000-abcd1234.eml/html/").status_code == 404


@pytest.mark.parametrize(
    "name",
    [
        "..%2Fsecret.eml",
        "%2E%2E%2Fsecret.eml",
        "..%5Csecret.eml",
        "..",
        ".hidden.eml",
        "secret_key",
        "..%2Fsecret_key",
        "message.txt",
        "a%00.eml",
        "missing.eml",
    ],
)
@pytest.mark.parametrize("suffix", ["", "html/"])
def test_names_outside_the_outbox_are_refused(client, outbox, name, suffix):
    """Only files the outbox wrote can be read: no path traversal to the data directory."""
    write_eml(outbox.parent / "secret.eml", text="the secret", html="<p>the secret</p>")
    write_eml(outbox / ".hidden.eml", text="the secret", html="<p>the secret</p>")
    write_eml(outbox / "message.txt", text="the secret", html="<p>the secret</p>")
    (outbox.parent / "secret_key").write_text("the secret")
    response = client.get(f"/dev/outbox/{name}/{suffix}")
    assert response.status_code == 404
    assert "the secret" not in response.content.decode()


def test_hidden_and_foreign_files_are_not_listed(client, outbox):
    write_eml(outbox / ".hidden.eml", text="x")
    (outbox / "notes.txt").write_text("x")
    assert "No mail yet." in client.get("/dev/outbox/").content.decode()


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_the_outbox_is_read_only(client, outbox, method):
    queue_test_message()
    name = only_message_name(outbox)
    for path in ("/dev/outbox/", f"/dev/outbox/{name}/"):
        assert getattr(client, method)(path).status_code == 405
    assert (outbox / name).exists()


def test_with_smtp_configured_the_outbox_pages_do_not_exist(client, settings, tmp_path):
    settings.OUTBOX_DIR = tmp_path / "outbox"
    settings.OUTBOX_ENABLED = False
    name = "20260101T000000000000-abcd1234.eml"
    write_eml(settings.OUTBOX_DIR / name, text="old mail", html="<p>old mail</p>")
    for path in ("/dev/outbox/", f"/dev/outbox/{name}/", f"/dev/outbox/{name}/html/"):
        response = client.get(path)
        assert response.status_code == 404
        assert "old mail" not in response.content.decode()
    assert "/dev/outbox/" not in client.get("/").content.decode()  # no menu link either


def test_the_menu_links_to_the_outbox_in_outbox_mode(client, outbox):
    assert 'href="/dev/outbox/"' in client.get("/").content.decode()
