"""Each message leaves with its own return path, bounces+<token>@<domain> (issue 17, VERP)."""

import re
from collections.abc import Iterator

import pytest
from django.db import transaction
from django.test import TestCase

from relatch.notify import verp
from relatch.notify.models import OutgoingEmail
from relatch.notify.services import note_bounce, send_mail
from tests.conftest import run_pending_tasks, use_smtp_port
from tests.notify.envelopes import EnvelopeSink, envelope_sink

pytestmark = pytest.mark.django_db


@pytest.fixture
def sink(settings) -> Iterator[EnvelopeSink]:
    with envelope_sink() as server:
        use_smtp_port(settings, server.port)
        yield server


def deliver(address: str) -> OutgoingEmail:
    with TestCase.captureOnCommitCallbacks(execute=True), transaction.atomic():
        (row,) = send_mail(to=[address], template="test_message", context={"name": "Ada"})
    assert run_pending_tasks() == 1
    row.refresh_from_db()
    assert row.status == OutgoingEmail.Status.SENT
    return row


def test_the_envelope_sender_is_the_message_s_own_return_path(sink, settings):
    """Over a real SMTP exchange: MAIL FROM names the message; the From header is unchanged."""
    settings.BOUNCE_DOMAIN = "bounces.example.net"
    first, second = deliver("ada@example.org"), deliver("bob@example.org")

    ada, bob = sink.last("ada@example.org"), sink.last("bob@example.org")
    assert re.fullmatch(rf"bounces\+{first.pk}-[0-9a-f]{{20}}@bounces\.example\.net",
                        ada.mail_from)
    assert ada.mail_from == verp.return_path(first.pk)
    assert bob.mail_from == verp.return_path(second.pk) != ada.mail_from
    assert verp.outgoing_id(ada.mail_from) == first.pk
    assert verp.outgoing_id(bob.mail_from) == second.pk
    # What people see is the site's address, not the return path.
    assert str(ada.message["From"]) == settings.DEFAULT_FROM_EMAIL
    assert "bounces+" not in ada.raw.decode()
    assert "Hello Ada" in str(ada.message.get_body(preferencelist=("plain",)).get_content())
    # Short enough for any mail server: a local part has at most 64 characters.
    assert len(ada.mail_from.partition("@")[0]) <= 64


def test_the_bounce_domain_defaults_to_the_from_address_s_domain(settings):
    """Without RELATCH_BOUNCE_DOMAIN, bounces go back to the domain mail comes from."""
    from_domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2].strip(">")
    assert from_domain == settings.BOUNCE_DOMAIN
    assert verp.return_path(7).endswith(f"@{from_domain}")


def test_with_verp_off_the_envelope_sender_is_the_from_address(sink, settings):
    """RELATCH_BOUNCE_DOMAIN=off: for a relay that accepts no other sender."""
    settings.VERP_ENABLED = False
    deliver("ada@example.org")
    assert sink.last("ada@example.org").mail_from == \
        settings.DEFAULT_FROM_EMAIL.partition("<")[2].rstrip(">")


@pytest.mark.parametrize("text", [
    "",
    "noreply@example.org",
    "bounces+12@example.org",  # no MAC
    "bounces+12-@example.org",
    "bounces+x-0123456789abcdef0123@example.org",
    "bounces+0-0123456789abcdef0123@example.org",
    "bounces+99999999999999999999-0123456789abcdef0123@example.org",  # past any row id
])
def test_a_garbled_return_path_names_no_message(text):
    assert verp.outgoing_id(text) is None


def test_a_token_cannot_be_forged_or_moved_to_another_message(settings):
    """An HMAC with the secret key: guessing, reusing another row's MAC, or a token made with
    another key names nothing (compared in constant time, DESIGN §7)."""
    genuine = verp.return_path(41)
    assert verp.outgoing_id(genuine) == 41
    mac = genuine.partition("-")[2].partition("@")[0]
    assert verp.outgoing_id(f"bounces+42-{mac}@example.org") is None
    assert verp.outgoing_id(f"bounces+41-{'0' * len(mac)}@example.org") is None
    assert verp.outgoing_id(genuine.replace(mac, mac[:-1])) is None  # truncated
    settings.SECRET_KEY = "another-key-" + "y" * 40
    assert verp.outgoing_id(genuine) is None


def test_a_token_survives_case_folding_domain_changes_and_key_rotation(settings):
    """Mail servers may fold case; the domain may change; a rotated key still reads the
    bounces of mail sent before (SECRET_KEY_FALLBACKS)."""
    genuine = verp.return_path(41)
    assert verp.outgoing_id(genuine.upper()) == 41
    assert verp.outgoing_id(f"<{genuine.partition('@')[0]}@old.example.net>") == 41
    old_key = settings.SECRET_KEY
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "new-key-" + "z" * 40, [old_key]
    assert verp.outgoing_id(genuine) == 41


def test_a_message_counts_once_as_soft_and_once_as_hard():
    with TestCase.captureOnCommitCallbacks(execute=False):
        (row,) = send_mail(to=["ada@example.org"], template="test_message")
    assert note_bounce(outgoing_id=row.pk, hard=False) is True
    assert note_bounce(outgoing_id=row.pk, hard=False) is False
    assert note_bounce(outgoing_id=row.pk, hard=True) is True
    assert note_bounce(outgoing_id=row.pk, hard=True) is False
    assert note_bounce(outgoing_id=row.pk, hard=False) is False
    row.refresh_from_db()
    assert row.bounce == OutgoingEmail.Bounce.HARD and row.bounced_at is not None
