"""Starting and filing a recovery request take as long for an existing username as for an
unknown one (issue 7 §3; ASVS 6.3.8). The answers are already the same (test_requester,
test_api); here the clock is the attacker's instrument, with the statistic of
tests/accounts/test_reset_timing.py (shuffled interleaving, 20th percentiles, three tries).

Filing is the step to watch: whoever owns the contact mailbox can confirm, and filing a
request for an existing account is when its owner is told.
"""

from collections.abc import Callable

import pytest
from django.test import Client
from django_tasks_db.models import DBTaskResult

from relatch.audit.models import EventKind, SecurityEvent
from relatch.notify.models import OutgoingEmail
from relatch.recovery.models import RecoveryRequest
from relatch.recovery.requester.services import contact_code
from tests.accounts.test_reset_timing import Send, assert_within_noise, expect, fresh_limits
from tests.conftest import run_pending_tasks
from tests.recovery.requests import make_request

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
NEW_FORM = "/recovery/request/new/"
API = "/api/v1/recovery/requests"


def form(username: str) -> dict[str, object]:
    return {"username": username, "contact_email": "lost@example.net", "still_has": ["password"],
            "description": "Lost my phone.", "agreed": True, "acknowledged": True}


def test_starting_a_request_takes_as_long_for_an_unknown_username(make_user):
    make_user(username="alice")
    browser = Client()

    def start_page(username: str) -> Callable[[], Send]:
        def prepare() -> Send:
            fresh_limits()
            return lambda: expect(browser.post(NEW_FORM, form(username)), 302)
        return prepare

    def start_api(username: str) -> Callable[[], Send]:
        def prepare() -> Send:
            fresh_limits()
            return lambda: expect(browser.post(API, form(username),
                                               content_type="application/json"), 202)
        return prepare

    assert_within_noise(start_page("alice"), start_page("nobody-here"))
    assert_within_noise(start_api("alice"), start_api("nobody-here"))
    assert RecoveryRequest.objects.filter(user__username="alice").exists()
    assert RecoveryRequest.objects.filter(username_claimed="nobody-here", user=None).exists()


def test_filing_a_request_takes_as_long_for_an_unknown_username(make_user):
    owner = make_user(username="alice")
    browser = Client()

    def confirm(user: object) -> Callable[[], Send]:
        def prepare() -> Send:
            fresh_limits()
            recovery = make_request(user, contact_confirmed_at=None)
            code = contact_code(recovery_id=recovery.pk)  # what the mail would carry
            return lambda: expect(browser.post(f"{API}/{recovery.public_id}/confirm",
                                               {"code": code},
                                               content_type="application/json"), 200)
        return prepare

    result = assert_within_noise(confirm(owner), confirm(None))
    filed = RecoveryRequest.objects.filter(contact_confirmed_at__isnull=False)
    assert filed.filter(user=owner).count() >= len(result.known)
    # The owner is still told of every filing, by the worker.
    run_pending_tasks(limit=DBTaskResult.objects.count())
    assert SecurityEvent.objects.filter(user=owner,
                                        kind=EventKind.RECOVERY_REQUESTED).count() >= len(
        result.known)
    assert OutgoingEmail.objects.filter(to=owner.emails.get().address,
                                        template="recovery_request_notice").exists()
