"""The JSON API under /api/v1/ (issue 5 §9): its schema, the requester's side (status token
as the credential), the staff side (staff-purpose token of a staff member with a second
factor) and API-token management. Every refusal is JSON {"detail": ...}, never a 500."""

import re

import pytest
from django.test import Client

from relatch.audit.models import EventKind, SecurityEvent, StaffAction
from relatch.index.models import APIToken
from relatch.index.tokens.services import create_token
from relatch.mfa.models import TotpDevice
from relatch.recovery.models import (
    ProofKind,
    RecoveryMessage,
    RecoveryProof,
    RecoveryRequest,
    RecoveryTransition,
    State,
)
from relatch.recovery.proofs import services as proof_services
from relatch.recovery.requester.links import status_token
from tests.conftest import PASSWORD, CommittingClient, sign_in
from tests.mfa.factor_rows import add_app
from tests.recovery.proof_rows import asked, make_project
from tests.recovery.requests import make_request
from tests.recovery.test_repo_branch import (  # noqa: F401
    allow_loopback,
    free_port,
    run_git,
    served_repo,
)

pytestmark = pytest.mark.django_db
API = "/api/v1"
CONTACT = "lost@example.net"
STATUS_RE = re.compile(r"/recovery/request/status/([^/]+)/([^/]+)/")


def post(client, path, body=None, **headers):
    return client.post(API + path, body if body is not None else {},
                       content_type="application/json", headers=headers)


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def new_request_body(**changes):
    return {"username": "alice", "contact_email": CONTACT, "still_has": ["password"],
            "description": "Lost my phone.", "agreed": True, "acknowledged": True, **changes}


def code_from(mail, contact: str = CONTACT) -> str:
    found = re.search(r"Your code: (\d{6})", mail.text(mail.last(contact)))
    assert found, mail.text(mail.last(contact))
    return found.group(1)


def file_request(client, mail, **changes) -> str:
    """Start and confirm a request through the API; return its status credential."""
    body = new_request_body(**changes)
    started = post(client, "/recovery/requests", body)
    assert started.status_code == 202, started.content
    public_id = started.json()["public_id"]
    code = code_from(mail, body["contact_email"])
    confirmed = post(client, f"/recovery/requests/{public_id}/confirm", {"code": code})
    assert confirmed.status_code == 200, confirmed.content
    link = next(url for url in mail.links(mail.last(body["contact_email"])) if "/status/" in url)
    found = STATUS_RE.search(link)
    assert found and found.group(1) == public_id
    return f"{public_id}.{found.group(2)}"


# -- the schema -----------------------------------------------------------------------------


def test_the_openapi_schema_is_served_with_the_paths(client):
    """DESIGN §6: the schema at /api/v1/openapi.json, with no sign-in."""
    response = client.get(f"{API}/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    for path in ("/api/v1/recovery/requests", "/api/v1/recovery/status",
                 "/api/v1/desk/requests", "/api/v1/desk/requests/{public_id}/deny",
                 "/api/v1/account/tokens"):
        assert path in schema["paths"], path
    assert {"StatusToken", "StaffToken"} <= set(schema["components"]["securitySchemes"])


@pytest.mark.parametrize(("component", "field"), [
    ("NewRequestIn", "username"), ("MessageIn", "body"), ("ReasonIn", "reason"),
    ("TokenIn", "name"),
])
def test_the_schema_says_which_text_may_not_be_blank(client, component, field):
    """Found by schemathesis: "  " matched the schema yet got a 422. The schema's pattern now
    refuses exactly what the server strips to nothing (every str.isspace() character)."""
    schema = client.get(f"{API}/openapi.json").json()
    pattern = schema["components"]["schemas"][component]["properties"][field]["pattern"]
    for blank in (" ", "\t\n", "\u3000\xa0", "\x1f\x85", "\u2028 \u205f"):
        assert re.search(pattern, blank) is None, repr(blank)
    for text in ("a", " x ", "\u200b", "\ufeff"):  # not whitespace to str.strip()
        assert re.search(pattern, text), repr(text)
    email = schema["components"]["schemas"]["NewRequestIn"]["properties"]["contact_email"]
    assert email["format"] == "email"


# -- the requester's side ------------------------------------------------------------------


def test_a_requester_files_follows_messages_and_cancels(client, user, mail):
    credential = file_request(client, mail)
    recovery = RecoveryRequest.objects.get()
    assert recovery.user == user and recovery.contact_confirmed_at is not None
    # The owner was told, with a "this wasn't me" link (NIST N8).
    assert any("/not-me/" in url for url in mail.links(mail.last("alice@example.org")))

    status = client.get(f"{API}/recovery/status", headers=bearer(credential))
    assert status.status_code == 200
    # What the requester said they still have was asked for at once, without staff.
    assert status.json()["state"] == State.AWAITING_PROOF
    assert [p["kind"] for p in status.json()["pending_proofs"]] == [
        recovery.proofs.get().kind]
    assert status.json()["may_cancel"] is True

    sent = post(client, "/recovery/status/messages", {"body": "I still have my password."},
                **bearer(credential))
    assert sent.status_code == 201
    assert RecoveryMessage.objects.get().author == RecoveryMessage.Author.REQUESTER
    status = client.get(f"{API}/recovery/status", headers=bearer(credential))
    assert [m["body"] for m in status.json()["messages"]] == ["I still have my password."]

    cancelled = post(client, "/recovery/status/cancel", **bearer(credential))
    assert cancelled.status_code == 200
    assert cancelled.json()["state"] == State.CANCELLED
    assert RecoveryTransition.objects.last().actor == RecoveryTransition.Actor.REQUESTER


def test_the_same_answer_whether_or_not_the_account_exists(client, user, mail):
    """ASVS 6.3.8, FP1: status, body shape and message are the same for an unknown name."""
    known = post(client, "/recovery/requests", new_request_body())
    unknown = post(client, "/recovery/requests", new_request_body(username="nobody-here"))
    assert known.status_code == unknown.status_code == 202
    assert known.json()["detail"] == unknown.json()["detail"]
    assert set(known.json()) == set(unknown.json()) == {"public_id", "detail"}


def test_a_wrong_code_is_refused_and_files_nothing(client, user, mail):
    started = post(client, "/recovery/requests", new_request_body())
    public_id = started.json()["public_id"]
    right = code_from(mail)
    wrong = "000000" if right != "000000" else "111111"
    response = post(client, f"/recovery/requests/{public_id}/confirm", {"code": wrong})
    assert response.status_code == 400
    assert response.json() == {"detail": "That code is wrong."}
    assert RecoveryRequest.objects.get().contact_confirmed_at is None
    missing = post(client, "/recovery/requests/no-such-id/confirm", {"code": right})
    assert missing.status_code == 404


@pytest.mark.parametrize(("changes", "field"), [
    ({"username": "x" * 51}, "username"),
    ({"username": "   "}, "username"),
    ({"contact_email": "not an address"}, "contact_email"),
    ({"contact_email": "a@" + "b" * 260 + ".org"}, "contact_email"),
    ({"still_has": ["a magic wand"]}, "still_has"),
    ({"description": "x" * 5001}, "description"),
    ({"agreed": None}, "agreed"),
])
def test_bad_input_is_a_clear_422_and_changes_nothing(client, mail, changes, field):
    response = post(client, "/recovery/requests", new_request_body(**changes))
    assert response.status_code == 422
    assert response.json()["detail"].startswith(field)
    assert not RecoveryRequest.objects.exists()
    assert mail.messages == []


def test_agreements_are_required(client, mail):
    response = post(client, "/recovery/requests", new_request_body(agreed=False))
    assert response.status_code == 400
    assert "code of conduct" in response.json()["detail"]
    assert not RecoveryRequest.objects.exists()


@pytest.mark.parametrize("body", [b"{not json", b"", b"[]", b'"text"'])
def test_a_malformed_body_is_not_a_server_error(client, body):
    response = client.post(f"{API}/recovery/requests", body, content_type="application/json")
    assert response.status_code in (400, 422)
    assert isinstance(response.json()["detail"], str)


@pytest.mark.parametrize("credential", [
    None, "", "no-dot-at-all", "abc.def", "x" * 500, "{public_id}.0000", "{public_id}.",
    "{public_id}.{other_token}",
])
def test_a_wrong_status_token_is_401(client, user, make_user, mail, credential):
    """The status link's secret is the only key: another request's token, a guessed one or
    none opens nothing (and says nothing)."""
    mine = file_request(client, mail)
    mail.clear()
    other = file_request(client, mail, username="someone-else", contact_email="o@example.net")
    public_id = mine.split(".")[0]
    headers = {}
    if credential is not None:
        value = credential.format(public_id=public_id, other_token=other.split(".", 1)[1])
        headers = bearer(value)
    response = client.get(f"{API}/recovery/status", headers=headers)
    assert response.status_code == 401
    assert isinstance(response.json()["detail"], str)
    assert public_id not in response.content.decode()


def test_an_unfiled_request_has_no_status(client, user, mail):
    started = post(client, "/recovery/requests", new_request_body())
    public_id = started.json()["public_id"]
    response = client.get(f"{API}/recovery/status", headers=bearer(f"{public_id}.{'0' * 64}"))
    assert response.status_code == 401


# -- the staff side -------------------------------------------------------------------------


@pytest.fixture
def staff(make_user):
    member = make_user(username="dana", is_staff=True)
    add_app(member)
    return member


def token_of(user, purpose=APIToken.Purpose.STAFF) -> str:
    row, text = create_token(request=None, user=user, name="desk", project=None,
                             expires_at=None)
    APIToken.objects.filter(pk=row.pk).update(purpose=purpose)
    return text


@pytest.fixture
def desk(staff):
    return bearer(token_of(staff))


def test_staff_list_the_queue_and_see_the_facts(client, user, desk):
    recovery = make_request(user)
    make_request(user, contact_confirmed_at=None)  # never filed: not in the queue
    listed = client.get(f"{API}/desk/requests", headers=desk)
    assert listed.status_code == 200
    assert [row["public_id"] for row in listed.json()] == [recovery.public_id]
    detail = client.get(f"{API}/desk/requests/{recovery.public_id}", headers=desk)
    assert detail.status_code == 200
    body = detail.json()
    assert body["facts"]["username"] == "alice"
    assert [a["address"] for a in body["facts"]["addresses"]] == ["alice@example.org"]
    assert body["verdict"]["may_complete"] is False


@pytest.mark.parametrize(("query", "count"), [
    ("", 1), ("?state=all", 2), ("?state=denied", 1), ("?assigned_to_me=true", 0),
    ("?owns_projects=true", 0),
])
def test_queue_filters(client, user, desk, query, count):
    make_request(user)
    make_request(user, state=State.DENIED)
    response = client.get(f"{API}/desk/requests{query}", headers=desk)
    assert response.status_code == 200
    assert len(response.json()) == count


@pytest.mark.parametrize("query", ["?state=nonsense", "?older_than_days=-1",
                                   "?older_than_days=99999999999999999999"])
def test_bad_queue_filters_are_422(client, desk, query):
    response = client.get(f"{API}/desk/requests{query}", headers=desk)
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], str)


def test_a_staff_message_via_the_api_is_a_staff_action_and_a_mail(client, user, staff, desk,
                                                                   mail):
    recovery = make_request(user, contact=CONTACT)
    response = post(client, f"/desk/requests/{recovery.public_id}/messages",
                    {"body": "Please push the branch."}, **desk)
    assert response.status_code == 201
    action = StaffAction.objects.get(action="recovery:message")
    assert (action.staff, action.subject) == (staff, user)
    assert "Please push the branch." in mail.text(mail.last(CONTACT))
    # The token's use is recorded on the staff member's account.
    assert SecurityEvent.objects.filter(user=staff, kind=EventKind.API_TOKEN_USED).exists()


def test_deny_needs_a_reason_then_denies(client, user, staff, desk):
    recovery = make_request(user)
    empty = post(client, f"/desk/requests/{recovery.public_id}/deny", {"reason": "  "}, **desk)
    assert empty.status_code == 422
    recovery.refresh_from_db()
    assert recovery.state == State.SUBMITTED
    denied = post(client, f"/desk/requests/{recovery.public_id}/deny",
                  {"reason": "The proofs do not match."}, **desk)
    assert denied.status_code == 200
    assert denied.json()["state"] == State.DENIED
    assert StaffAction.objects.filter(staff=staff, action="recovery:denied").exists()


def test_a_refused_desk_action_is_409_with_the_reason(client, user, desk):
    recovery = make_request(user)
    response = post(client, f"/desk/requests/{recovery.public_id}/approve", **desk)
    assert response.status_code == 409
    assert "Approve once the proofs are in" in response.json()["detail"]
    assert not StaffAction.objects.exists()


def test_assign_to_a_staff_member(client, user, staff, desk):
    recovery = make_request(user)
    response = post(client, f"/desk/requests/{recovery.public_id}/assign",
                    {"assignee": "dana"}, **desk)
    assert response.status_code == 200
    assert response.json()["assigned_to"] == "dana"
    assert StaffAction.objects.filter(action="recovery:assign").exists()
    nobody = post(client, f"/desk/requests/{recovery.public_id}/assign",
                  {"assignee": "ghost"}, **desk)
    assert nobody.status_code == 400


@pytest.mark.parametrize("body", [b"-1.2e89", b"[]", b'"dana"', b"null", b"true"])
def test_a_body_that_is_not_an_object_changes_nothing(client, user, staff, desk, body):
    """Found by schemathesis: ninja read a JSON number or list as an object with no fields, so
    assign (every field optional) took it for {} and unassigned the request."""
    recovery = make_request(user, assigned_to=staff)
    response = client.post(f"{API}/desk/requests/{recovery.public_id}/assign", body,
                           content_type="application/json", headers=desk)
    assert response.status_code == 400
    assert isinstance(response.json()["detail"], str)
    recovery.refresh_from_db()
    assert recovery.assigned_to == staff
    assert not StaffAction.objects.exists()


@pytest.mark.parametrize(("path", "body"), [
    ("/recovery/requests", new_request_body(username="al\x00ice")),
    ("/recovery/requests", new_request_body(description="lost\x00")),
    ("/desk/requests/{public_id}/messages", {"body": "hi\x00"}),
    ("/desk/requests/{public_id}/assign", {"assignee": "da\x00na"}),
    ("/desk/requests/{public_id}/deny", {"reason": "\x00"}),
    ("/desk/requests/{public_id}/proofs", {"kind": "repo_branch", "project": "\x00"}),
])
def test_a_nul_character_is_a_422_not_a_server_error(client, user, desk, path, body):
    """Found by schemathesis on PostgreSQL, whose text cannot hold NUL: stored or looked up, it
    raised a 500. The schema says so too (a pattern on every text field)."""
    recovery = make_request(user)
    response = post(client, path.format(public_id=recovery.public_id), body, **desk)
    assert response.status_code == 422
    assert "NUL" in response.json()["detail"]
    assert RecoveryRequest.objects.count() == 1
    assert not StaffAction.objects.exists()


@pytest.mark.parametrize("path", [
    "/desk/requests/%00", "/desk/requests/ab%00cd/deny", "/recovery/requests/%00/confirm",
    "/recovery/requests/%00/new-code",
])
def test_a_nul_in_a_request_id_is_not_found(client, user, desk, path):
    """Found by schemathesis on PostgreSQL: a NUL in the path reached the query (a 500)."""
    make_request(user)
    response = post(client, path, {"reason": "x"}, **desk) if path.endswith(("deny", "confirm",
        "new-code")) else client.get(API + path, headers=desk)
    assert response.status_code in (404, 422)
    assert isinstance(response.json()["detail"], str)


def test_a_nul_in_a_status_credential_is_401(client, user):
    recovery = make_request(user)
    response = client.get(f"{API}/recovery/status",
                          headers=bearer(f"{recovery.public_id}\x00.{'0' * 64}"))
    assert response.status_code == 401


def test_an_unknown_request_is_404(client, desk):
    for path in ("/desk/requests/nope", "/desk/requests/" + "x" * 300):
        response = client.get(API + path, headers=desk)
        assert response.status_code == 404
        assert response.json() == {"detail": "There is no recovery request with this id."}


@pytest.mark.parametrize("case", ["missing", "garbage", "upload", "not staff", "no factor",
                                  "revoked", "session"])
def test_the_desk_refuses_anyone_but_staff_with_a_staff_token(client, user, make_user, staff,
                                                              case):
    """Staff are a role; only staff see the desk (issue 5), never with an upload token."""
    recovery = make_request(user)
    headers: dict[str, str] = {}
    if case == "garbage":
        headers = bearer("relatch-not-a-token")
    elif case == "upload":
        headers = bearer(token_of(staff, APIToken.Purpose.UPLOAD))
    elif case == "not staff":
        outsider = make_user(username="eve")
        add_app(outsider)
        headers = bearer(token_of(outsider))
    elif case == "no factor":
        headers = bearer(token_of(staff))
        TotpDevice.objects.filter(user=staff).delete()  # a password-only staff account
    elif case == "revoked":
        headers = bearer(token_of(staff))
        APIToken.objects.update(revoked_at="2020-01-01T00:00:00Z")
    elif case == "session":
        sign_in(client, staff)  # a signed-in staff browser is not a staff token
    for response in (client.get(f"{API}/desk/requests", headers=headers),
                     client.get(f"{API}/desk/requests/{recovery.public_id}", headers=headers),
                     post(client, f"/desk/requests/{recovery.public_id}/deny",
                          {"reason": "x"}, **headers)):
        assert response.status_code in (401, 403), response.content
        assert recovery.public_id not in response.content.decode()
        assert isinstance(response.json()["detail"], str)
    recovery.refresh_from_db()
    assert recovery.state == State.SUBMITTED
    assert not StaffAction.objects.exists()


# -- API tokens -----------------------------------------------------------------------------


def test_token_management_needs_a_session(client):
    assert client.get(f"{API}/account/tokens").status_code == 401
    assert post(client, "/account/tokens", {"name": "ci"}).status_code == 401


def test_a_signed_in_user_lists_creates_and_revokes_tokens(client, user, mail):
    add_app(user)
    sign_in(client, user)
    created = post(client, "/account/tokens", {"name": "ci"})
    assert created.status_code == 201
    token = created.json()
    assert token["token"].startswith("relatch-")
    listed = client.get(f"{API}/account/tokens")
    assert [t["name"] for t in listed.json()] == ["ci"]
    assert "token" not in listed.json()[0]  # shown once, never again
    revoked = post(client, f"/account/tokens/{token['id']}/revoke")
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    again = post(client, f"/account/tokens/{token['id']}/revoke")
    assert again.status_code == 400
    assert post(client, "/account/tokens/999999999999/revoke").status_code == 422
    assert "token" in str(mail.last("alice@example.org")["Subject"]).lower()


def test_creating_a_token_needs_a_second_factor_and_a_fresh_password(client, user):
    sign_in(client, user)
    refused = post(client, "/account/tokens", {"name": "ci"})
    assert refused.status_code == 403
    assert "two-step sign-in" in refused.json()["detail"]
    add_app(user)
    session = client.session
    session.pop("relatch_reauth_at")
    session.save()
    stale = post(client, "/account/tokens", {"name": "ci"})
    assert stale.status_code == 403
    assert "Confirm your password" in stale.json()["detail"]
    assert not APIToken.objects.exists()


def test_token_creation_is_csrf_checked(user):
    """A session-authenticated write without the CSRF token is refused (ASVS 3.5.1)."""
    add_app(user)
    browser = CommittingClient(enforce_csrf_checks=True)
    sign_in(browser, user)
    response = post(browser, "/account/tokens", {"name": "ci"})
    assert response.status_code == 403
    assert not APIToken.objects.exists()


def test_a_staff_token_lists_its_owners_tokens(desk):
    response = Client().get(f"{API}/account/tokens", headers=desk)
    assert response.status_code == 200
    assert [t["purpose"] for t in response.json()] == ["staff"]


@pytest.mark.parametrize(("method", "path", "status"), [
    ("get", "/recovery/requests", 405),
    ("post", "/recovery/status", 405),
    ("get", "/nope", 404),
    ("post", "/desk/nope/deeper", 404),
    ("get", "/docs", 404),  # no interactive page: it would load scripts the CSP forbids
])
def test_wrong_paths_and_methods_answer_in_json(client, method, path, status):
    response = getattr(client, method)(API + path)
    assert response.status_code == status
    assert isinstance(response.json()["detail"], str)


@pytest.mark.parametrize(("body", "content_type"), [
    (b"username=alice", "application/x-www-form-urlencoded"),
    ("\u00e9" * 10, "text/plain"),
])
def test_a_body_in_another_format_is_400(client, body, content_type):
    response = client.post(f"{API}/recovery/requests", body, content_type=content_type)
    assert response.status_code == 400
    assert isinstance(response.json()["detail"], str)
    assert not RecoveryRequest.objects.exists()


def test_a_proof_asked_through_the_api_shows_on_the_requesters_status(client, user, staff,
                                                                      desk, mail):
    credential = file_request(client, mail)
    public_id = credential.split(".")[0]
    asked = post(client, f"/desk/requests/{public_id}/proofs", {"kind": "api_token"}, **desk)
    assert asked.status_code == 201, asked.content
    assert asked.json()["kind"] == "api_token"
    assert StaffAction.objects.filter(staff=staff, action="recovery:request_proof").exists()
    status = client.get(f"{API}/recovery/status", headers=bearer(credential)).json()
    assert status["state"] == State.AWAITING_PROOF
    assert [p["kind"] for p in status["pending_proofs"]] == ["password", "api_token"]
    unknown = post(client, f"/desk/requests/{public_id}/proofs", {"kind": "telepathy"}, **desk)
    assert unknown.status_code == 422


def test_a_request_closed_for_silence_is_reopened_through_the_api(client, user, mail):
    credential = file_request(client, mail)
    RecoveryRequest.objects.update(state=State.CLOSED_NO_RESPONSE)
    status = client.get(f"{API}/recovery/status", headers=bearer(credential)).json()
    assert status["may_reopen"] is True
    reopened = post(client, "/recovery/status/reopen", **bearer(credential))
    assert reopened.status_code == 200
    assert reopened.json()["state"] == State.AWAITING_PROOF
    again = post(client, "/recovery/status/reopen", **bearer(credential))
    assert again.status_code == 409
    assert "closed for lack of response" in again.json()["detail"]


# -- the requester's proofs -----------------------------------------------------------------

PROOFS = "/recovery/status/proofs"


def holder_of(recovery) -> dict[str, str]:
    """The status-link holder's credential for ``recovery``."""
    return bearer(f"{recovery.public_id}.{status_token(recovery)}")


def proof_status(proof) -> tuple[str, int]:
    proof.refresh_from_db()
    return proof.status, proof.attempts


def test_the_requester_lists_pending_proofs_as_the_page_shows_them(client, user, staff,
                                                                    make_user):
    """Issue 5 §9: what each proof asks for, the branch exactly as the page names it, and
    the account's addresses only masked (ASVS 6.3.8: nothing to learn about the account)."""
    url = "https://codeberg.org/alice/sandwich"
    project = make_project(user, urls={"Source": url})
    recovery, branch = asked(user, staff, ProofKind.REPO_BRANCH, project=project)
    email = proof_services.request_proof(recovery=recovery, kind=ProofKind.ACCOUNT_EMAIL,
                                         staff=staff)
    done = proof_services.request_proof(recovery=recovery, kind=ProofKind.PASSWORD, staff=staff)
    RecoveryProof.objects.filter(pk=done.pk).update(status=RecoveryProof.Status.SATISFIED)
    asked(make_user(username="bob"), staff, ProofKind.PASSWORD)  # another request's proof

    response = client.get(API + PROOFS, headers=holder_of(recovery))
    assert response.status_code == 200
    listed = {p["kind"]: p for p in response.json()}
    assert set(listed) == {"repo_branch", "account_email"}
    shown = listed["repo_branch"]
    assert shown["id"] == branch.pk
    assert (shown["repository"], shown["project"]) == (url, "sandwich")
    assert shown["branch"] == proof_services.branch_to_push(branch)
    assert "Push a branch" in shown["instructions"]
    assert listed["account_email"]["addresses"] == [
        {"choice": user.emails.get().pk, "masked": "a***@example.org"}]
    assert listed["account_email"]["id"] == email.pk
    assert "alice@example.org" not in response.content.decode()
    assert client.get(API + PROOFS).status_code == 401


def test_a_password_answer_is_checked_and_never_echoed(client, user, staff):
    """ASVS 6.3.5: a wrong answer says how many tries are left; the right one satisfies."""
    recovery, proof = asked(user, staff, ProofKind.PASSWORD)
    path = f"{PROOFS}/{proof.pk}/answer"
    wrong = post(client, path, {"answer": "hunter2-wrong"}, **holder_of(recovery))
    assert wrong.status_code == 400
    assert wrong.json() == {"detail": "That is not right. 4 attempts left."}
    assert "hunter2-wrong" not in wrong.content.decode()
    assert proof_status(proof) == (RecoveryProof.Status.PENDING, 1)
    right = post(client, path, {"answer": PASSWORD}, **holder_of(recovery))
    assert right.status_code == 200, right.content
    assert right.json()["detail"] == "Proof accepted. Thank you."
    assert right.json()["proof"]["status"] == RecoveryProof.Status.SATISFIED
    assert PASSWORD not in right.content.decode()
    assert SecurityEvent.objects.filter(user=user, kind=EventKind.RECOVERY_PROOF_CHECKED,
                                        details__status="satisfied").exists()
    again = post(client, path, {"answer": PASSWORD}, **holder_of(recovery))
    assert again.status_code == 400
    assert "takes no more answers" in again.json()["detail"]


@pytest.mark.parametrize(("answer", "status", "detail", "attempts"), [
    ("relatch-not-a-token", 400, "That is not right. 4 attempts left.", 1),
    ("x" * 1500, 400, "Paste the whole token.", 0),  # what the page's form refuses
    ("x" * 2001, 422, "answer: ", 0),
    ("", 422, "answer: ", 0),
])
def test_a_bad_api_token_answer_is_refused(client, user, staff, answer, status, detail,
                                           attempts):
    recovery, proof = asked(user, staff, ProofKind.API_TOKEN)
    response = post(client, f"{PROOFS}/{proof.pk}/answer", {"answer": answer},
                    **holder_of(recovery))
    assert response.status_code == status
    assert response.json()["detail"].startswith(detail)
    assert answer[:20] not in response.content.decode() or not answer
    assert proof_status(proof) == (RecoveryProof.Status.PENDING, attempts)


def test_an_api_token_of_the_account_satisfies_the_proof(client, user, staff):
    add_app(user)
    _, raw = create_token(request=None, user=user, name="ci", project=None, expires_at=None)
    recovery, proof = asked(user, staff, ProofKind.API_TOKEN)
    response = post(client, f"{PROOFS}/{proof.pk}/answer", {"answer": raw},
                    **holder_of(recovery))
    assert response.status_code == 200, response.content
    assert raw not in response.content.decode()
    proof.refresh_from_db()
    assert proof.status == RecoveryProof.Status.SATISFIED
    assert raw not in str(proof.evidence)


def test_a_code_is_mailed_to_a_chosen_address_and_answers_the_proof(client, user, staff,
                                                                    make_user, mail):
    """NIST N3: the code goes only to a verified address of the account, chosen masked."""
    recovery, proof = asked(user, staff, ProofKind.ACCOUNT_EMAIL)
    headers = holder_of(recovery)
    early = post(client, f"{PROOFS}/{proof.pk}/answer", {"answer": "123456"}, **headers)
    assert early.json() == {"detail": "Send a code to one of the account's addresses first."}
    stranger = make_user(username="bob").emails.get().pk
    for choice in (stranger, 999999):
        refused = post(client, f"{PROOFS}/{proof.pk}/send-code", {"address_choice": choice},
                       **headers)
        assert refused.status_code == 400
        assert refused.json() == {"detail": "Choose one of the addresses."}
    assert mail.to("bob@example.org") == [] and mail.to("alice@example.org") == []
    sent = post(client, f"{PROOFS}/{proof.pk}/send-code",
                {"address_choice": user.emails.get().pk}, **headers)
    assert sent.status_code == 202
    assert sent.json()["detail"] == "A code is on its way. It works for 10 minutes."
    code = re.search(r"\b(\d{6})\b", mail.text(mail.last("alice@example.org"))).group(1)
    assert code not in sent.content.decode()
    unreadable = post(client, f"{PROOFS}/{proof.pk}/answer", {"answer": "12"}, **headers)
    assert unreadable.json() == {"detail": "Enter the 6 digits of the code."}
    listed = client.get(API + PROOFS, headers=headers).json()
    assert listed[0]["code_sent_to"] == "a***@example.org"
    right = post(client, f"{PROOFS}/{proof.pk}/answer", {"answer": code}, **headers)
    assert right.status_code == 200, right.content
    assert proof_status(proof) == (RecoveryProof.Status.SATISFIED, 0)


def test_send_code_is_only_for_an_account_email_proof(client, user, staff):
    recovery, proof = asked(user, staff, ProofKind.PASSWORD)
    response = post(client, f"{PROOFS}/{proof.pk}/send-code",
                    {"address_choice": user.emails.get().pk}, **holder_of(recovery))
    assert response.status_code == 400
    assert response.json() == {"detail": "This proof asks for something else."}


@pytest.mark.parametrize(("action", "body"), [
    ("answer", {"answer": PASSWORD}), ("send-code", {"address_choice": 1}), ("check", None),
])
def test_one_requests_credential_opens_no_other_proof(client, user, staff, make_user, action,
                                                      body):
    """The status token is one request's key: another request's proof is a 404, and a proof
    id out of range is a 422, never a 500."""
    _, proof = asked(user, staff, ProofKind.PASSWORD)
    other, _ = asked(make_user(username="bob"), staff, ProofKind.PASSWORD)
    response = post(client, f"{PROOFS}/{proof.pk}/{action}", body, **holder_of(other))
    assert response.status_code == 404
    assert response.json() == {"detail": "This request has no such proof."}
    huge = post(client, f"{PROOFS}/{2**40}/{action}", body, **holder_of(other))
    assert huge.status_code == 422
    unauthenticated = post(client, f"{PROOFS}/{proof.pk}/{action}", body)
    assert unauthenticated.status_code == 401
    assert proof_status(proof) == (RecoveryProof.Status.PENDING, 0)


def test_a_branch_proof_is_checked_not_answered(client, user, staff, settings):
    allow_loopback(settings)
    url = f"git://127.0.0.1:{free_port()}/nothing.git"
    recovery, proof = asked(user, staff, ProofKind.REPO_BRANCH,
                            project=make_project(user, urls={"Source": url}))
    answered = post(client, f"{PROOFS}/{proof.pk}/answer", {"answer": "x"}, **holder_of(recovery))
    assert answered.status_code == 400
    assert answered.json()["detail"].startswith("A branch proof is not answered")
    password_proof = proof_services.request_proof(recovery=recovery, kind=ProofKind.PASSWORD,
                                                  staff=staff)
    wrong_kind = post(client, f"{PROOFS}/{password_proof.pk}/check", **holder_of(recovery))
    assert wrong_kind.json() == {"detail": "This is not a branch proof."}
    queued = post(client, f"{PROOFS}/{proof.pk}/check", **holder_of(recovery))
    assert queued.status_code == 202  # git runs in the worker, never in the request
    assert queued.json()["proof"]["checking"] is True
    assert proof_status(proof) == (RecoveryProof.Status.FAILED, 0)  # the worker has run
    failed = post(client, f"{PROOFS}/{proof.pk}/check", **holder_of(recovery))
    assert failed.status_code == 400
    assert failed.json()["detail"] == "This proof is failed: it takes no more checks."


def test_checking_finds_the_pushed_branch(client, user, staff, served_repo):  # noqa: F811
    """DESIGN §5 repo_branch over real git: a check is queued (202) and run by the worker;
    before the push the proof list says what it saw; after, it satisfies the proof."""
    url, work = served_repo
    recovery, proof = asked(user, staff, ProofKind.REPO_BRANCH,
                            project=make_project(user, urls={"Source": url}))
    listed = client.get(API + PROOFS, headers=holder_of(recovery)).json()
    branch = listed[0]["branch"]
    early = post(client, f"{PROOFS}/{proof.pk}/check", **holder_of(recovery))
    assert early.status_code == 202
    assert early.json()["detail"] == ("We are checking the repository now; this page shows "
                                      "the result in a moment.")
    assert early.json()["proof"]["checking"] is True
    [seen] = client.get(API + PROOFS, headers=holder_of(recovery)).json()
    assert (seen["checking"], seen["last_result"]) == (False, "branch absent")
    assert seen["last_checked_at"]
    run_git("push", "-q", "origin", f"HEAD:refs/heads/{branch}", cwd=work)
    found = post(client, f"{PROOFS}/{proof.pk}/check", **holder_of(recovery))
    assert found.status_code == 202, found.content
    assert proof_status(proof) == (RecoveryProof.Status.SATISFIED, 0)
    assert client.get(API + PROOFS, headers=holder_of(recovery)).json() == []
