"""API tokens: created with a second factor after re-authentication, shown once, stored hashed,
checked at constant cost, scoped, revoked, their use recorded (issue 4 §2; ASVS 6.3.7, 6.5.6,
7.5.1; NIST N9, N17, N19; MFA1, MFA2; DESIGN §7)."""

import base64
import hashlib
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client, TestCase
from django.utils import timezone

from relatch.accounts.models import Email, User
from relatch.audit.models import EventKind, Factor, SecurityEvent
from relatch.index.models import APIToken, Project, Role
from relatch.index.tokens import primitive, services
from relatch.index.tokens.services import (
    TokenError,
    TokenRefusedError,
    authenticate_token,
    create_token,
    note_token_refusal,
    note_token_use,
    revoke_token,
    token_allows_project,
)
from relatch.index.tokens.views import ALREADY_SENT
from relatch.mfa.policy import SecondFactorRequiredError
from tests.conftest import CommittingClient, run_pending_tasks, sign_in
from tests.mfa.factor_rows import add_app, add_key

LIST = "/account/tokens/"
NEW = LIST + "new/"
FORM_TOKEN = re.compile(r'name="form_token" value="([^"]+)"')
SHOWN_TOKEN = re.compile(r'<code id="api-token" class="token-text">([^<]+)</code>')


def revoke_url(token_id: int) -> str:
    return f"{LIST}{token_id}/revoke/"


def make_project(name: str, *, user: User | None = None, kind: str = Role.Kind.OWNER) -> Project:
    project = Project.objects.create(name=name, normalized_name=name.lower())
    if user is not None:
        Role.objects.create(project=project, user=user, kind=kind)
    return project


def form_token(client: Client) -> str:
    page = client.get(NEW)
    assert page.status_code == 200, page.status_code
    match = FORM_TOKEN.search(page.text)
    assert match, "no create form on the page"
    return match.group(1)


def post_create(client: Client, **fields: Any) -> Any:
    data = {"name": "laptop", "scope": "all", "expiry": "90", "expires_on": ""}
    data.update({"form_token": form_token(client)}, **fields)
    return client.post(NEW, data)


def shown_token(response: Any) -> str:
    match = SHOWN_TOKEN.search(response.text)
    assert match, "the token is not on the page"
    return match.group(1)


def service_token(user: User, **fields: Any) -> tuple[APIToken, str]:
    """A token made by the service directly; its mail delivered."""
    args: dict[str, Any] = {"name": "ci", "project": None, "expires_at": None, **fields}
    with TestCase.captureOnCommitCallbacks(execute=True):
        made = create_token(request=None, user=user, **args)
    run_pending_tasks()
    return made


@pytest.fixture
def with_app(user: User) -> User:
    add_app(user)
    return user


# --- Who may create ------------------------------------------------------------------------


def test_account_without_second_factor_is_told_and_cannot_create(signed_in: Client) -> None:
    """MFA2: a token uploads without a second factor, so only an account with one mints it."""
    listing = signed_in.get(LIST)
    assert listing.status_code == 200
    assert "Creating a token needs two-step sign-in" in listing.text
    assert 'href="/account/two-factor/"' in listing.text
    page = signed_in.get(NEW)
    assert page.status_code == 403
    assert "Creating an API token needs two-step sign-in" in page.text
    refused = signed_in.post(NEW, {"name": "x", "scope": "all", "expiry": "90"})
    assert refused.status_code == 403
    assert not APIToken.objects.exists()


@pytest.mark.parametrize("factor", ["app", "key"])
def test_either_second_factor_allows_creation(signed_in: Client, user: User, factor: str) -> None:
    add_app(user) if factor == "app" else add_key(user, "yubikey")
    response = post_create(signed_in)
    assert response.status_code == 200
    assert APIToken.objects.filter(user=user).count() == 1


def test_service_refuses_an_account_without_second_factor(user: User) -> None:
    with pytest.raises(SecondFactorRequiredError):
        create_token(request=None, user=user, name="x", project=None, expires_at=None)
    assert not APIToken.objects.exists()


@pytest.mark.parametrize("method", ["get", "post"])
def test_creation_needs_recent_reauthentication(
    client: CommittingClient, with_app: User, method: str
) -> None:
    """ASVS 7.5.1: a stale session is sent to confirm first (which asks for the factor too)."""
    sign_in(client, with_app, reauthenticated=False)
    data = {"name": "x", "scope": "all", "expiry": "90"} if method == "post" else None
    response = getattr(client, method)(NEW, data)
    assert response.status_code == 302
    assert response["Location"].startswith("/account/reauthenticate/?next=")
    assert not APIToken.objects.exists()


def test_create_without_csrf_token_is_refused(with_app: User) -> None:
    browser = sign_in(Client(enforce_csrf_checks=True), with_app)
    response = browser.post(NEW, {"name": "x", "scope": "all", "expiry": "90"})
    assert response.status_code == 403
    assert not APIToken.objects.exists()


# --- Shown once, stored hashed -------------------------------------------------------------


def test_new_token_is_shown_once_with_the_twine_configuration(
    signed_in: Client, with_app: User
) -> None:
    """DESIGN §7: the secret appears on one page, uncached, and nowhere after."""
    response = post_create(signed_in, name="GitHub Actions")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    text = shown_token(response)
    assert f"repository = {settings.BASE_URL}/legacy/" in response.text
    assert "username = __token__" in response.text
    assert f"password = {text}" in response.text
    assert 'data-copy-target="api-token"' in response.text
    assert "/static/relatch/copy-token.js" in response.text
    assert "<script>" not in response.text  # strict CSP: no inline script
    # Not in the list, not in the session store: a reload has nothing to show.
    assert text not in signed_in.get(LIST).text
    secret = text.split(".", 1)[1]
    assert all(secret not in str(s.get_decoded()) for s in Session.objects.all())


def test_resending_the_create_form_makes_no_second_token(signed_in: Client, with_app: User) -> None:
    """A reload of the result page re-POSTs: it says so and shows no token."""
    data = {
        "name": "laptop",
        "scope": "all",
        "expiry": "90",
        "form_token": form_token(signed_in),
    }
    first = signed_in.post(NEW, data)
    assert first.status_code == 200
    again = signed_in.post(NEW, data)
    assert again.status_code == 400
    assert "This form was already sent" in again.text
    assert ALREADY_SENT.split(":")[0] in again.text
    assert SHOWN_TOKEN.search(again.text) is None
    assert APIToken.objects.count() == 1


def test_token_format_has_prefix_and_256_bits_of_secret() -> None:
    made = {primitive.new_token().text for _ in range(20)}
    assert len(made) == 20
    for text in made:
        assert re.fullmatch(r"relatch-[a-z0-9]{16}\.[A-Za-z0-9_-]{43}", text), text
        secret = text.split(".", 1)[1]
        assert len(base64.urlsafe_b64decode(secret + "=")) * 8 >= 256
        assert primitive.parse_token(text).text == text


def test_token_is_not_stored_in_clear(with_app: User) -> None:
    row, text = service_token(with_app)
    identifier, secret = text.removeprefix("relatch-").split(".")
    assert row.identifier == identifier
    stored = APIToken.objects.filter(pk=row.pk).values().get()
    assert all(secret not in str(value) for value in stored.values())
    assert stored["secret_digest"] == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in repr(primitive.parse_token(text))


# --- Name, scope, expiry -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "status", "message"),
    [
        ("", 400, "Give the token a name"),
        ("   ", 400, "Give the token a name"),
        ("x" * 101, 400, "at most 100 characters"),
        ("x" * 100, 200, "Copy it now"),
    ],
)
def test_name_is_required_and_bounded(
    signed_in: Client, with_app: User, name: str, status: int, message: str
) -> None:
    response = post_create(signed_in, name=name)
    assert response.status_code == status
    assert message in response.text
    assert APIToken.objects.count() == (1 if status == 200 else 0)


def test_scope_offers_only_projects_with_a_role(
    signed_in: Client, with_app: User, make_user: Any
) -> None:
    mine = make_project("mine", user=with_app, kind=Role.Kind.MAINTAINER)
    theirs = make_project("theirs", user=make_user())
    page = signed_in.get(NEW).text
    assert f'value="{mine.pk}"' in page
    assert "Only theirs" not in page
    created = post_create(signed_in, scope=str(mine.pk))
    assert created.status_code == 200
    assert "Project mine" in created.text
    assert APIToken.objects.get().project == mine
    forged = post_create(signed_in, scope=str(theirs.pk))
    assert forged.status_code == 400
    assert "Choose all your projects or one project you have a role on." in forged.text
    assert APIToken.objects.count() == 1


def test_service_refuses_a_project_without_a_role(with_app: User, make_user: Any) -> None:
    theirs = make_project("theirs", user=make_user())
    with pytest.raises(TokenError, match="no role on that project"):
        create_token(request=None, user=with_app, name="x", project=theirs, expires_at=None)
    assert not APIToken.objects.exists()


@pytest.mark.parametrize(("choice", "days"), [("30", 30), ("90", 90), ("180", 180), ("366", 366)])
def test_expiry_choices(signed_in: Client, with_app: User, choice: str, days: int) -> None:
    assert post_create(signed_in, expiry=choice).status_code == 200
    expires_at = APIToken.objects.get().expires_at
    assert expires_at is not None
    assert abs(expires_at - (timezone.now() + timedelta(days=days))) < timedelta(minutes=1)


def test_never_is_no_longer_offered_and_90_days_is_the_default(
    signed_in: Client, with_app: User
) -> None:
    """Issue 21: no new token lives forever; the form starts on the default."""
    page = signed_in.get(NEW).text
    assert 'value="never"' not in page
    assert re.search(r'<option value="90" selected>In 90 days \(the default\)</option>', page)
    assert "At most 366 days ahead." in page
    refused = post_create(signed_in, expiry="never")
    assert refused.status_code == 400
    assert "Choose when the token expires." in refused.text
    assert not APIToken.objects.exists()


def test_expiry_on_a_chosen_date(signed_in: Client, with_app: User) -> None:
    day = (timezone.now() + timedelta(days=10)).astimezone(UTC).date()
    assert post_create(signed_in, expiry="date", expires_on=day.isoformat()).status_code == 200
    assert APIToken.objects.get().expires_at == datetime(day.year, day.month, day.day, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expires_on", "message"),
    [
        ("", "Enter the date the token should expire."),
        ("not a date", "Enter the date as YYYY-MM-DD."),
        ("2000-01-01", "The expiry date must be after today."),
        ("2999-01-01", "A token can work for at most 366 days: choose an expiry on or before "),
    ],
)
def test_bad_expiry_dates_are_refused(
    signed_in: Client, with_app: User, expires_on: str, message: str
) -> None:
    response = post_create(signed_in, expiry="date", expires_on=expires_on)
    assert response.status_code == 400
    assert message in response.text
    assert not APIToken.objects.exists()


def test_service_refuses_a_past_expiry(with_app: User) -> None:
    with pytest.raises(TokenError, match="must be in the future"):
        service_token(with_app, expires_at=timezone.now() - timedelta(seconds=1))


def test_a_token_made_without_a_date_expires_after_the_default(with_app: User) -> None:
    """The service's default, for every caller (page, API, scripts): TOKEN_DEFAULT_DAYS."""
    row, _ = service_token(with_app)
    assert row.expires_at is not None
    expected = timezone.now() + timedelta(days=settings.TOKEN_DEFAULT_DAYS)
    assert abs(row.expires_at - expected) < timedelta(minutes=1)


def test_live_tokens_are_limited_per_account(with_app: User) -> None:
    APIToken.objects.bulk_create(
        APIToken(user=with_app, name=f"t{i}", identifier=f"id{i:04d}", secret_digest="0" * 64)
        for i in range(services.MAX_LIVE_TOKENS)
    )
    with pytest.raises(TokenError, match="already have 50 working tokens"):
        service_token(with_app)
    APIToken.objects.filter(name="t0").update(revoked_at=timezone.now())
    service_token(with_app)  # a revoked one frees a place
    assert APIToken.objects.count() == services.MAX_LIVE_TOKENS + 1


# --- Events and mail -----------------------------------------------------------------------


def test_creation_is_recorded_and_mailed_to_every_verified_address(
    signed_in: Client, with_app: User, mail: Any
) -> None:
    """NIST N9, ASVS 6.3.7: every verified address hears of it; an unverified one does not."""
    Email.objects.create(
        user=with_app, address="alice@work.example", verified=True, verified_at=timezone.now()
    )
    Email.objects.create(user=with_app, address="maybe@example.net", verified=False)
    response = post_create(signed_in, name="release box")
    assert response.status_code == 200
    text = shown_token(response)
    token = APIToken.objects.get()
    event = SecurityEvent.objects.get(user=with_app, kind=EventKind.API_TOKEN_CREATED)
    assert event.details["token_id"] == token.pk
    assert event.details["name"] == "release box"
    assert event.ip_address == "127.0.0.1"
    assert {str(m["To"]) for m in mail.messages} == {"alice@example.org", "alice@work.example"}
    body = mail.text(mail.last("alice@work.example"))
    assert "A new API token was created" in body
    assert "Name: release box" in body
    assert "Scope: All your projects" in body
    assert "If this wasn't you" in body
    assert all(text.split(".")[1] not in mail.text(m) + mail.html(m) for m in mail.messages)


# --- authenticate_token ---------------------------------------------------------------------


def test_the_right_token_is_accepted(with_app: User) -> None:
    row, text = service_token(with_app)
    assert authenticate_token(raw=text) == row


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "__token__",
        "pypi-AgEIcHlwaS5vcmc",
        "relatch-",
        "relatch-abc.def",
        "relatch-" + "a" * 16 + "." + "b" * 42,  # one short
        "relatch-" + "a" * 16 + "." + "b" * 44,  # one long
        "relatch-" + "A" * 16 + "." + "b" * 43,  # upper case identifier
        "relatch-" + "a" * 16 + "." + "b" * 42 + "=",  # not base64url
        "relatch-" + "a" * 16 + "-" + "b" * 43,  # no separator
        "RELATCH-" + "a" * 16 + "." + "b" * 43,
        "relatch-" + "a" * 16 + "." + "b" * 43 + "x" * 10_000,
    ],
)
def test_malformed_text_is_refused(db: None, raw: str) -> None:
    with pytest.raises(TokenRefusedError) as refused:
        authenticate_token(raw=raw)
    assert refused.value.reason == "malformed"
    assert refused.value.message.startswith("That is not a Relatch API token.")
    assert "__token__" in refused.value.message
    assert refused.value.token is None


def _with_identifier(text: str, identifier: str) -> str:
    return f"relatch-{identifier}.{text.split('.', 1)[1]}"


def _with_secret(text: str, secret: str) -> str:
    return f"{text.split('.', 1)[0]}.{secret}"


@pytest.mark.parametrize("case", ["unknown identifier", "wrong secret"])
def test_unknown_identifier_and_wrong_secret_get_one_answer(with_app: User, case: str) -> None:
    """ASVS 6.3.8: the answer does not tell which identifiers exist."""
    _, text = service_token(with_app)
    if case == "unknown identifier":
        forged = _with_identifier(text, "z" * 16)
    else:
        forged = _with_secret(text, primitive.new_token().secret)
    with pytest.raises(TokenRefusedError) as refused:
        authenticate_token(raw=forged)
    assert refused.value.reason == "invalid"
    assert refused.value.message == services.INVALID
    assert refused.value.token is None


def test_an_unknown_identifier_costs_one_digest_comparison(
    with_app: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Constant cost: the unknown identifier is compared against a dummy digest too."""
    compared: list[tuple[bytes, bytes]] = []
    real = primitive.hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(primitive.hmac, "compare_digest", counting)
    _, text = service_token(with_app)
    for forged in (_with_identifier(text, "z" * 16), _with_secret(text, "c" * 43)):
        with pytest.raises(TokenRefusedError):
            authenticate_token(raw=forged)
    assert len(compared) == 2
    assert all(len(a) == len(b) == 64 for a, b in compared)


@pytest.mark.parametrize(
    ("case", "reason", "message"),
    [
        ("revoked", "revoked", "This API token was revoked."),
        ("expired", "expired", "This API token has expired."),
        ("inactive user", "inactive", "The account this API token belongs to is disabled."),
    ],
)
def test_unusable_tokens_are_refused_with_their_reason(
    with_app: User, case: str, reason: str, message: str
) -> None:
    """NIST N17/N19: a revoked token stops working at once; so does an expired one."""
    row, text = service_token(with_app)
    if case == "revoked":
        APIToken.objects.filter(pk=row.pk).update(revoked_at=timezone.now())
    elif case == "expired":
        APIToken.objects.filter(pk=row.pk).update(expires_at=timezone.now())
    else:
        User.objects.filter(pk=with_app.pk).update(is_active=False)
    with pytest.raises(TokenRefusedError) as refused:
        authenticate_token(raw=text)
    assert refused.value.reason == reason
    assert refused.value.message.startswith(message)
    assert refused.value.token == row
    note_token_refusal(request=None, refusal=refused.value)
    event = SecurityEvent.objects.get(kind=EventKind.API_TOKEN_REFUSED)
    assert (event.user, event.factor, event.details["reason"]) == (with_app, "api_token", reason)


def test_a_token_expiring_later_still_works(with_app: User) -> None:
    row, text = service_token(with_app, expires_at=timezone.now() + timedelta(minutes=5))
    assert authenticate_token(raw=text) == row


def test_refusal_of_an_unknown_token_records_nothing(db: None) -> None:
    with pytest.raises(TokenRefusedError) as refused:
        authenticate_token(raw="nonsense")
    note_token_refusal(request=None, refusal=refused.value)
    assert not SecurityEvent.objects.filter(kind=EventKind.API_TOKEN_REFUSED).exists()


# --- Scope ---------------------------------------------------------------------------------


def test_all_projects_token_reaches_any_project(with_app: User) -> None:
    row, _ = service_token(with_app)
    assert token_allows_project(row, "anything")
    assert token_allows_project(row, "brand-new-project")


def test_scoped_token_reaches_only_its_project(with_app: User) -> None:
    project_a = make_project("alpha", user=with_app)
    make_project("beta", user=with_app)
    _, text = service_token(with_app, project=project_a)
    row = authenticate_token(raw=text)  # as the upload endpoint gets it
    assert token_allows_project(row, "alpha")
    assert not token_allows_project(row, "beta")
    assert not token_allows_project(row, "brand-new-project")


# --- Use -----------------------------------------------------------------------------------


def test_use_is_recorded_and_shown_on_the_list(signed_in: Client, with_app: User) -> None:
    row, _ = service_token(with_app, name="ci box")
    assert "Never used" in signed_in.get(LIST).text
    note_token_use(request=None, token=row)
    row.refresh_from_db()
    assert row.last_used_at is not None
    event = SecurityEvent.objects.get(kind=EventKind.API_TOKEN_USED)
    assert (event.user, event.factor, event.details["token_id"]) == (
        with_app,
        Factor.API_TOKEN,
        row.pk,
    )
    listing = signed_in.get(LIST).text
    assert "ci box" in listing
    assert "Never used" not in listing
    assert row.last_used_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") in listing


def test_list_shows_scope_expiry_and_state(signed_in: Client, with_app: User) -> None:
    project = make_project("alpha", user=with_app)
    service_token(with_app, name="scoped", project=project)
    revoked, _ = service_token(with_app, name="old")
    APIToken.objects.filter(pk=revoked.pk).update(revoked_at=timezone.now())
    expired, _ = service_token(with_app, name="expiring", expires_at=timezone.now() + timedelta(1))
    APIToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(1))
    listing = signed_in.get(LIST).text
    assert "Project alpha" in listing
    assert "All your projects" in listing
    assert "Revoked" in listing
    assert "Expired" in listing
    assert revoke_url(revoked.pk) not in listing
    assert revoke_url(expired.pk) in listing


# --- Revoke --------------------------------------------------------------------------------


def test_revoke_stops_the_token_records_and_mails(
    signed_in: Client, with_app: User, mail: Any
) -> None:
    row, text = service_token(with_app, name="leaked")
    mail.clear()
    response = signed_in.post(revoke_url(row.pk))
    assert response.status_code == 302
    assert response["Location"] == LIST
    assert "Token “leaked” revoked" in signed_in.get(LIST).text
    row.refresh_from_db()
    assert row.revoked_at is not None
    assert (
        SecurityEvent.objects.filter(kind=EventKind.API_TOKEN_REVOKED, user=with_app).count() == 1
    )
    assert "An API token was revoked" in mail.text(mail.last("alice@example.org"))
    with pytest.raises(TokenRefusedError, match="revoked"):
        authenticate_token(raw=text)


def test_revoke_twice_changes_nothing_more(signed_in: Client, with_app: User) -> None:
    row, _ = service_token(with_app, name="twice")
    signed_in.post(revoke_url(row.pk))
    again = signed_in.post(revoke_url(row.pk), follow=True)
    assert "was already revoked. Nothing was changed." in again.text
    assert SecurityEvent.objects.filter(kind=EventKind.API_TOKEN_REVOKED).count() == 1


def test_revoke_needs_recent_reauthentication(client: CommittingClient, with_app: User) -> None:
    row, _ = service_token(with_app)
    sign_in(client, with_app, reauthenticated=False)
    response = client.post(revoke_url(row.pk))
    assert response.status_code == 302
    assert response["Location"].startswith("/account/reauthenticate/?next=")
    row.refresh_from_db()
    assert row.revoked_at is None


@pytest.mark.parametrize("whose", ["another account's", "a missing"])
def test_revoking_a_token_that_is_not_yours_is_not_found(
    signed_in: Client, make_user: Any, whose: str
) -> None:
    other = make_user()
    add_app(other)
    row, _ = service_token(other)
    token_id = row.pk if whose == "another account's" else row.pk + 1000
    response = signed_in.post(revoke_url(token_id))
    assert response.status_code == 404
    assert "That is not one of your API tokens. Nothing was changed." in response.text
    row.refresh_from_db()
    assert row.revoked_at is None
    assert not SecurityEvent.objects.filter(kind=EventKind.API_TOKEN_REVOKED).exists()


def test_revoke_by_get_changes_nothing(signed_in: Client, with_app: User) -> None:
    row, _ = service_token(with_app)
    assert signed_in.get(revoke_url(row.pk)).status_code == 405
    row.refresh_from_db()
    assert row.revoked_at is None


def test_service_revoke_of_another_account_token_raises_not_found(
    with_app: User, make_user: Any
) -> None:
    other = make_user()
    add_app(other)
    row, _ = service_token(other)
    with pytest.raises(services.TokenNotFoundError):
        revoke_token(request=None, user=with_app, token_id=row.pk)


def test_revoke_works_without_a_second_factor(signed_in: Client, user: User) -> None:
    """A factor lost or removed must not keep a leaked token alive (ASVS 6.5.6)."""
    device = add_app(user)
    row, _ = service_token(user)
    device.delete()
    assert signed_in.post(revoke_url(row.pk)).status_code == 302
    row.refresh_from_db()
    assert row.revoked_at is not None


def test_list_needs_sign_in(client: CommittingClient) -> None:
    response = client.get(LIST)
    assert response.status_code == 302
    assert "/account/login/" in response["Location"]


def test_a_staff_token_never_uploads_and_an_upload_token_never_reaches_the_desk(user):
    """A token serves one purpose: the recovery desk's staff tokens cannot publish."""
    from relatch.index.models import APIToken
    from relatch.index.tokens.services import TokenRefusedError, authenticate_token
    from tests.mfa.factor_rows import add_app

    add_app(user)
    row, text = create_token(request=None, user=user, name="desk", project=None, expires_at=None)
    APIToken.objects.filter(pk=row.pk).update(purpose=APIToken.Purpose.STAFF)
    with pytest.raises(TokenRefusedError) as refused:
        authenticate_token(raw=text)
    assert refused.value.reason == "purpose"
    assert authenticate_token(raw=text, purpose=APIToken.Purpose.STAFF).pk == row.pk


@pytest.mark.parametrize("max_days", [366, 30])
def test_the_service_caps_the_expiry_for_every_caller(
    with_app: User, settings: Any, max_days: int
) -> None:
    """The cap is the service's rule (issues 16, 21): the page's form and the API both meet it,
    and the refusal names the latest expiry allowed."""
    settings.TOKEN_MAX_DAYS = max_days
    settings.TOKEN_DEFAULT_DAYS = min(90, max_days)
    far = timezone.now() + timedelta(days=max_days, minutes=1)
    with pytest.raises(TokenError) as refused:
        service_token(with_app, expires_at=far)
    latest = (far - timedelta(minutes=1)).astimezone(UTC)
    assert refused.value.message.startswith(f"A token can work for at most {max_days} days")
    assert f"on or before {latest:%Y-%m-%d} " in refused.value.message
    assert not APIToken.objects.exists()
    row, _ = service_token(with_app, expires_at=far - timedelta(minutes=2))
    assert row.expires_at == far - timedelta(minutes=2)
