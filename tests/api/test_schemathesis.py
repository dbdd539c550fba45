"""Hostile input against the JSON API (issue 7 §3): schemathesis generates requests from
/api/v1/openapi.json, valid and invalid, for every operation, and sends them in-process
through Django's WSGI application (all middleware included) with working credentials, so
the generated input reaches the handlers instead of stopping at a 401.

Every response must be no server error, carry a status the schema documents, and have a body
that matches the schema (schemathesis's checks). Short by default (CI); set
RELATCH_FULL_CHECKS=1 for a few thousand cases.
"""

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from relatch.accounts.models import User
from relatch.index.models import APIToken
from relatch.index.tokens.services import create_token
from relatch.recovery.models import ProofKind
from relatch.recovery.proofs import services as proof_services
from relatch.recovery.requester.links import status_token
from relatch.wsgi import application
from tests.conftest import sign_in
from tests.full_checks import FULL
from tests.mfa.factor_rows import add_app
from tests.recovery.requests import make_request

# Per operation (24 of them), plus schemathesis's own boundary cases: ~700 requests in CI,
# ~5000 by hand.
EXAMPLES = 150 if FULL else 15

pytestmark = pytest.mark.django_db


# Loaded at collection, through the app itself, so each operation is its own test item.
schema = schemathesis.openapi.from_wsgi(
    "/api/v1/openapi.json", application, headers={"Host": "testserver"},
    config=schemathesis.Config.from_dict({"checks": {"positive_data_acceptance": {
        # A schema-valid request may still be refused by a rule the schema cannot state
        # (an unknown project, an expiry in the past): that is the documented 400. A 422 for
        # schema-valid input stays a failure: it means the schema leaves out a constraint.
        "expected-statuses": ["2xx", "400", "401", "403", "404", "409", "429"],
    }}}),
)


class Credentials:
    """One working credential of each kind the API accepts, and the ids they open."""

    def __init__(self, staff: User, requester: User, session: Client) -> None:
        recovery = make_request(requester, contact="lost@example.net")
        # Real proofs so the proof ids the fuzzer tries sometimes exist.
        for kind in (ProofKind.PASSWORD, ProofKind.ACCOUNT_EMAIL, ProofKind.API_TOKEN):
            proof_services.request_proof(recovery=recovery, kind=kind, staff=staff)
        self.status = f"{recovery.public_id}.{status_token(recovery)}"
        self.filed = recovery.public_id
        self.unfiled = make_request(requester, contact_confirmed_at=None).public_id
        row, self.staff = create_token(request=None, user=staff, name="desk", project=None,
                                       expires_at=None)
        APIToken.objects.filter(pk=row.pk).update(purpose=APIToken.Purpose.STAFF)
        self.session = session.cookies[django_settings.SESSION_COOKIE_NAME].value
        self.csrf = secrets.token_hex(16)  # 32 characters: Django's unmasked secret

    def apply(self, case: Any) -> None:
        """Put the credential the operation at ``case.path`` needs on ``case``."""
        if case.path.startswith("/api/v1/desk/"):
            case.headers["Authorization"] = f"Bearer {self.staff}"
        elif case.path.startswith("/api/v1/recovery/status"):
            case.headers["Authorization"] = f"Bearer {self.status}"
        elif case.path.startswith("/api/v1/account/"):
            case.cookies[django_settings.SESSION_COOKIE_NAME] = self.session
            # The session is CSRF-checked (ASVS 3.5.1): cookie and header must agree.
            case.cookies[django_settings.CSRF_COOKIE_NAME] = self.csrf
            case.headers["X-CSRFToken"] = self.csrf


# The credentials of the running test: made by its fixture (they are rows in its transaction),
# read by the auth provider below when schemathesis generates each case.
CURRENT: dict[str, Credentials] = {}


@schema.auth(refresh_interval=None)
class FromFixture:
    """schemathesis's hook for credentials: it marks them as the caller's own, so its
    ``ignored_auth`` check probes each operation without them and with forged ones."""

    def get(self, case: Any, context: Any) -> Credentials | None:
        needs_auth = not case.path.startswith("/api/v1/recovery/requests")
        return CURRENT.get("now") if needs_auth else None

    def set(self, case: Any, data: Credentials, context: Any) -> None:
        data.apply(case)


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> Any:
    """Half the time a request id that exists (unfiled for the requester's confirm and new-code,
    filed for the desk), so the fuzzed bodies reach the code past the 404."""
    credentials = CURRENT.get("now")
    if credentials is None or "public_id" not in (path_parameters or {}):
        return st.just(path_parameters)
    path = context.operation.path
    real = credentials.unfiled if path.startswith("/api/v1/recovery/") else credentials.filed
    return st.sampled_from([path_parameters, {**path_parameters, "public_id": real}])


@pytest.fixture
def in_process(settings: Any) -> Iterator[None]:
    """Requests run inside the test's transaction: Django must not close the connection at the
    start or end of each one (its own test client does the same). The WSGI client's Host
    header ("localhost") is allowed."""
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "localhost"]
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    try:
        yield
    finally:
        for signal in (request_started, request_finished):
            signal.connect(close_old_connections)


@pytest.fixture
def credentials(make_user: Any, in_process: None) -> Iterator[Credentials]:
    staff = make_user(username="dana", is_staff=True)
    add_app(staff)
    requester = make_user(username="alice")
    add_app(requester)
    CURRENT["now"] = Credentials(staff, requester, sign_in(Client(), requester))
    yield CURRENT["now"]
    CURRENT.clear()


@schema.parametrize()
@hypothesis_settings(max_examples=EXAMPLES, deadline=None, database=None,
                     suppress_health_check=list(HealthCheck))
def test_the_api_survives_generated_input(case: Any, credentials: Credentials) -> None:
    """No 5xx, only documented statuses, bodies that match the schema."""
    case.call_and_validate()
