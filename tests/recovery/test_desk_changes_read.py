"""A request's desk page lists the account's changes around it (relatch.recovery.takeover)
with one read, found through the partial index of changes, however many other events the
account has (issue 22: the page stays fast on bench/scale.py's 10 M events)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from relatch.audit.models import EventKind, SecurityEvent, kind_label
from tests.recovery.requests import make_request

pytestmark = pytest.mark.django_db


def _events(user, kind, count, *, start, details=None):
    SecurityEvent.objects.bulk_create(
        SecurityEvent(user=user, kind=kind, created_at=start - timedelta(seconds=n),
                      details=details or {})
        for n in range(count))


def test_the_page_lists_the_few_changes_among_many_uploads_and_offers_their_undo(
        desk, make_user):
    alice = make_user(username="alice")
    recovery = make_request(alice)
    now = timezone.now()
    _events(alice, EventKind.API_TOKEN_USED, 300, start=now)
    _events(alice, EventKind.EMAIL_ADDED, 1, start=now - timedelta(days=2),
            details={"address": "mallory@evil.example"})
    _events(alice, EventKind.SIGNIN_SUCCEEDED, 300, start=now - timedelta(days=3))

    with CaptureQueriesContext(connection) as captured:
        page = desk.get(f"/desk/{recovery.public_id}/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "Email address added: mallory@evil.example" in html
    assert "Remove mallory@evil.example" in html  # the completion form offers the undo
    # The changes are read once for the list and the form (each read lists up to 200 events).
    change_reads = [q for q in captured.captured_queries
                    if "audit_securityevent" in q["sql"] and "email_added" in q["sql"]]
    assert len(change_reads) == 1


def test_a_kind_no_longer_known_is_named_by_its_value():
    assert kind_label(EventKind.EMAIL_ADDED) == EventKind.EMAIL_ADDED.label
    assert kind_label("retired_kind") == "retired_kind"
