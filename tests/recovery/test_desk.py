"""The staff desk: only staff see it; every action is recorded and moves a request only as the
workflow allows (issue 5 point 7; DESIGN §5; ASVS 8.2.1, 8.3.1, 16.3.2, 7.5.1)."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from relatch.audit.models import EventKind, SecurityEvent, StaffAction
from relatch.index.models import Project, Release, Role
from relatch.recovery.desk import queries
from relatch.recovery.models import (
    ProofKind,
    RecoveryApproval,
    RecoveryMessage,
    RecoveryRequest,
    State,
)
from tests.conftest import sign_in
from tests.mfa.factor_rows import add_app, add_codes, add_key
from tests.recovery.requests import end_wait, make_request, satisfy

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(make_staff):
    """Here dana has a second factor: the staff member signed in to the desk."""
    return make_staff()


@pytest.fixture
def desk(client, staff):
    """The desk signed in as ``staff`` (the tests here use both)."""
    return sign_in(client, staff)


@pytest.fixture
def recovery(user):
    return make_request(user, contact="alice@new.example")


def detail_url(recovery):
    return f"/desk/{recovery.public_id}/"


def post(client, recovery, action, data=None):
    return client.post(f"{detail_url(recovery)}{action}/", data or {})


def staff_actions(staff, action):
    return StaffAction.objects.filter(staff=staff, action=action)


# --- who may see the desk -------------------------------------------------------------------

DESK_PATHS = ["", "{id}/", "{id}/assign/", "{id}/assign-me/", "{id}/message/", "{id}/proof/",
              "{id}/approve/", "{id}/deny/", "{id}/override/", "{id}/complete/"]


@pytest.mark.parametrize("path", DESK_PATHS)
@pytest.mark.parametrize("who", ["anonymous", "normal user"])
@pytest.mark.parametrize("method", ["get", "post"])
def test_people_without_the_role_get_a_404_everywhere(client, user, recovery, path, who, method):
    """The desk is not even revealed to non-staff: 404 as for a missing page (ASVS 8.2.1)."""
    if who == "normal user":
        add_app(user)
        sign_in(client, user)
    response = getattr(client, method)("/desk/" + path.format(id=recovery.public_id))
    assert response.status_code == 404
    recovery.refresh_from_db()
    assert recovery.state == State.SUBMITTED and recovery.assigned_to is None
    assert not StaffAction.objects.exists()


def test_staff_without_a_second_factor_are_refused(client, make_staff, recovery):
    """A staff password alone does not open the desk (NIST N30: AAL2 for privileged use)."""
    staff = make_staff(second_factor=False)
    sign_in(client, staff)
    for response in (client.get("/desk/"), client.get(detail_url(recovery)),
                     post(client, recovery, "assign-me")):
        assert response.status_code == 403
        assert "two-step sign-in" in response.content.decode()
    assert not StaffAction.objects.exists()


def test_an_action_without_a_fresh_password_asks_for_it_and_changes_nothing(
    client, staff, recovery
):
    """ASVS 7.5.1: a stale staff session cannot act."""
    sign_in(client, staff, reauthenticated=False)
    response = post(client, recovery, "deny", {"reason": "spam"})
    assert response.status_code == 302
    assert response["Location"].startswith("/account/reauthenticate")
    recovery.refresh_from_db()
    assert recovery.state == State.SUBMITTED


# --- the queue ------------------------------------------------------------------------------


def aged(recovery, days):
    RecoveryRequest.objects.filter(pk=recovery.pk).update(
        created_at=timezone.now() - timedelta(days=days)
    )
    return recovery


def test_the_queue_lists_filed_requests_oldest_first_with_age_against_the_target(
    desk, user, make_user
):
    bob = make_user(username="bob")
    new = make_request(bob, contact="bob@new.example")
    old = aged(make_request(user, contact="alice@new.example"), 5)
    unknown = aged(make_request(None, contact="x@new.example"), 1)
    make_request(user, contact_confirmed_at=None)  # never confirmed: not filed
    make_request(user, state=State.DENIED)  # closed: not in the working queue

    response = desk.get("/desk/")
    page = response.content.decode()
    assert response.status_code == 200
    ids = [r.public_id for r in response.context["rows"]]
    assert ids == [old.public_id, unknown.public_id, new.public_id]
    rows = {r.public_id: r for r in response.context["rows"]}
    assert rows[old.public_id].over_target and not rows[new.public_id].over_target
    assert not rows[unknown.public_id].account_matched and rows[old.public_id].account_matched
    assert "over target" in page and "no such account" in page


def test_the_first_answer_target_is_a_setting(desk, user, settings):
    settings.RECOVERY_FIRST_ANSWER_TARGET = timedelta(hours=1)
    aged(make_request(user), 0.1)
    row = desk.get("/desk/").context["rows"][0]
    assert row.over_target
    RecoveryMessage.objects.create(request=RecoveryRequest.objects.get(), author="staff",
                                   body="hi")
    row = desk.get("/desk/").context["rows"][0]
    assert not row.over_target and row.first_answer_at is not None


def test_the_queue_filters(desk, staff, user, make_user):
    owner = make_user(username="owner")
    project = Project.objects.create(name="Spam", normalized_name="spam")
    Role.objects.create(project=project, user=owner, kind=Role.Kind.OWNER)
    mine = make_request(user, state=State.AWAITING_PROOF, assigned_to=staff)
    owning = aged(make_request(owner), 4)

    def ids(query):
        response = desk.get("/desk/?" + query)
        assert response.status_code == 200
        return {r.public_id for r in response.context["rows"]}

    assert ids("state=awaiting_proof") == {mine.public_id}
    assert ids("older_than=3") == {owning.public_id}
    assert ids("owns_projects=yes") == {owning.public_id}
    assert ids("owns_projects=no") == {mine.public_id}
    assert ids("mine=on") == {mine.public_id}
    assert ids("state=all") == {mine.public_id, owning.public_id}


@pytest.mark.parametrize("query", ["state=bogus", "older_than=-1", "older_than=abc",
                                   "older_than=99999999999999999999", "owns_projects=maybe"])
def test_bad_filters_get_a_clear_message(desk, recovery, query):
    response = desk.get("/desk/?" + query)
    assert response.status_code == 400
    assert 'class="error"' in response.content.decode()


def test_the_queue_runs_a_fixed_number_of_queries(user, make_user, django_assert_max_num_queries):
    for n in range(12):
        make_request(make_user(username=f"someone{n}"), assigned_to=user)
    with django_assert_max_num_queries(1):
        assert len(queries.queue()) == 12


# --- the detail page ------------------------------------------------------------------------


def test_the_detail_page_shows_the_request_and_the_accounts_facts(desk, user, make_user):
    add_app(user)
    add_key(user, "Yubikey")
    add_codes(user, used=3)
    project = Project.objects.create(name="Spam", normalized_name="spam")
    Role.objects.create(project=project, user=user, kind=Role.Kind.OWNER)
    Release.objects.create(project=project, version="1.0", canonical_version="1",
                           project_urls={"Source": "https://git.example/alice/spam"})
    SecurityEvent.objects.create(user=user, kind=EventKind.SIGNIN_SUCCEEDED,
                                 ip_address="192.0.2.7")
    earlier = make_request(user, state=State.DENIED)
    recovery = make_request(user, contact="alice@new.example", still_has=["password"],
                            description="Lost my phone")
    satisfy(recovery, ProofKind.API_TOKEN)

    page = desk.get(detail_url(recovery)).content.decode()
    for expected in ["alice@new.example", "confirmed", "Lost my phone", "password",
                     "Yubikey", "3 of 8 used", "alice@example.org", "verified",
                     "Spam (Owner)", "https://git.example/alice/spam", "192.0.2.7",
                     earlier.public_id, "An API token of the account", "Satisfied"]:
        assert expected in page, expected


@pytest.mark.parametrize(("earlier", "listed", "more"), [(0, 0, False), (20, 20, False),
                                                          (23, 20, True)])
def test_earlier_requests_are_listed_up_to_twenty_newest_first(desk, user, earlier, listed,
                                                                 more):
    """Someone filing again and again must not make the account's page grow without end."""
    start = timezone.now() - timedelta(days=earlier + 1)
    made = []
    for n in range(earlier):
        old = make_request(user, state=State.DENIED)
        RecoveryRequest.objects.filter(pk=old.pk).update(created_at=start + timedelta(days=n))
        made.append(old.public_id)
    recovery = make_request(user)

    page = desk.get(detail_url(recovery)).content.decode()

    shown = [public_id for public_id in made if public_id in page]
    assert shown == made[::-1][:listed][::-1]  # the newest ones
    assert ("the account in the user search" in page) is more
    if more:
        assert f'href="/desk/users/?q={user.username}"' in page


def test_an_unknown_request_is_a_404(desk):
    assert desk.get("/desk/nope/").status_code == 404


# --- actions --------------------------------------------------------------------------------


def test_assign_to_me_and_to_another_staff_member(desk, staff, make_staff, recovery):
    other = make_staff("erin")
    assert post(desk, recovery, "assign-me").status_code == 302
    recovery.refresh_from_db()
    assert recovery.assigned_to == staff
    assert post(desk, recovery, "assign", {"assignee": "erin"}).status_code == 302
    recovery.refresh_from_db()
    assert recovery.assigned_to == other
    action = staff_actions(staff, "recovery:assign").first()
    assert (action.before["assigned_to"], action.after["assigned_to"]) == ("dana", "erin")
    assert recovery.state == State.SUBMITTED


def test_assigning_to_a_non_staff_account_is_refused(desk, recovery, make_user):
    make_user(username="mallory")
    response = post(desk, recovery, "assign", {"assignee": "mallory"})
    assert response.status_code == 400
    assert "Pick a staff member" in response.content.decode()
    recovery.refresh_from_db()
    assert recovery.assigned_to is None


def test_a_message_reaches_the_requester(desk, staff, recovery, mail):
    response = post(desk, recovery, "message", {"body": "Which projects do you maintain?"})
    assert response.status_code == 302
    message = RecoveryMessage.objects.get(request=recovery)
    assert (message.author, message.staff) == ("staff", staff)
    text = mail.text(mail.last("alice@new.example"))
    assert "Which projects do you maintain?" in text
    assert "/recovery/request/status/" in text
    assert staff_actions(staff, "recovery:message").exists()
    recovery.refresh_from_db()
    assert recovery.awaiting_requester_since is not None


@pytest.mark.parametrize("body", ["", "   ", "x" * 5001])
def test_an_empty_or_overlong_message_is_refused(desk, recovery, body, mail):
    response = post(desk, recovery, "message", {"body": body})
    assert response.status_code in (400, 409)
    assert not RecoveryMessage.objects.exists()
    assert not mail.to("alice@new.example")


def test_asking_for_a_proof_moves_a_new_request_to_awaiting_proof(desk, staff, recovery):
    response = post(desk, recovery, "proof", {"kind": ProofKind.API_TOKEN})
    assert response.status_code == 302, response.content.decode()[:2000]
    recovery.refresh_from_db()
    assert recovery.state == State.AWAITING_PROOF
    assert recovery.proofs.filter(kind=ProofKind.API_TOKEN).exists()
    assert staff_actions(staff, "recovery:request_proof").exists()
    assert staff_actions(staff, "recovery:awaiting_proof").exists()


@pytest.mark.parametrize("data", [{"kind": "telepathy"}, {},
                                  {"kind": ProofKind.REPO_BRANCH},
                                  {"kind": ProofKind.REPO_BRANCH, "project": "nope"}])
def test_a_bad_proof_request_is_refused(desk, recovery, data):
    response = post(desk, recovery, "proof", data)
    assert response.status_code == 400
    assert 'class="error"' in response.content.decode()
    recovery.refresh_from_db()
    assert recovery.state == State.SUBMITTED and not recovery.proofs.exists()


def test_two_approvals_must_come_from_different_staff(desk, staff, make_staff, make_client,
                                                     user, mail):
    recovery = make_request(user, state=State.AWAITING_APPROVAL)
    assert post(desk, recovery, "approve").status_code == 302
    again = post(desk, recovery, "approve")
    assert again.status_code == 409
    assert "already approved" in again.content.decode()
    assert RecoveryApproval.objects.filter(request=recovery).count() == 1
    other = sign_in(make_client(), make_staff("erin"))
    assert post(other, recovery, "approve").status_code == 302
    assert RecoveryApproval.objects.filter(request=recovery).count() == 2
    assert staff_actions(staff, "recovery:approve").count() == 1
    assert SecurityEvent.objects.filter(user=user, kind=EventKind.RECOVERY_APPROVED).exists()
    assert "/recovery/request/" in mail.text(mail.last("alice@example.org"))


def test_approval_waits_for_the_evidence(desk, recovery):
    response = post(desk, recovery, "approve")
    assert response.status_code == 409
    assert not RecoveryApproval.objects.exists()


@pytest.mark.parametrize("reason", ["", "  ", "x" * 2001])
def test_deny_needs_a_reason(desk, recovery, reason):
    response = post(desk, recovery, "deny", {"reason": reason})
    assert response.status_code == 400
    recovery.refresh_from_db()
    assert recovery.state == State.SUBMITTED


def test_deny_with_a_reason(desk, staff, recovery):
    assert post(desk, recovery, "deny", {"reason": "Not the owner"}).status_code == 302
    recovery.refresh_from_db()
    assert recovery.state == State.DENIED
    action = staff_actions(staff, "recovery:denied").get()
    assert (action.reason, action.before["state"]) == ("Not the owner", State.SUBMITTED)
    # A denied request takes no more actions.
    response = post(desk, recovery, "message", {"body": "hello"})
    assert response.status_code == 409 and "denied" in response.content.decode()


def test_override_needs_a_reason_and_starts_the_wait(desk, staff, recovery, settings):
    assert post(desk, recovery, "override", {"reason": ""}).status_code == 400
    recovery.refresh_from_db()
    assert recovery.state == State.SUBMITTED and not recovery.override_reason

    assert post(desk, recovery, "override", {"reason": "Known maintainer"}).status_code == 302
    recovery.refresh_from_db()
    assert recovery.state == State.IN_WAITING_PERIOD
    assert recovery.override_reason == "Known maintainer"
    expected = timezone.now() + settings.RECOVERY_WAIT
    assert abs(recovery.wait_ends_at - expected) < timedelta(minutes=1)
    assert staff_actions(staff, "recovery:override").get().reason == "Known maintainer"


def test_complete_is_refused_until_the_policy_is_met(desk, staff, make_staff, make_client,
                                                     user, mail):
    add_app(user)
    recovery = make_request(user, contact="alice@new.example", state=State.AWAITING_APPROVAL)
    satisfy(recovery, ProofKind.API_TOKEN)
    response = post(desk, recovery, "complete")
    assert response.status_code == 409
    assert "cannot complete yet" in response.content.decode()
    recovery.refresh_from_db()
    assert recovery.state == State.AWAITING_APPROVAL

    satisfy(recovery, ProofKind.ACCOUNT_EMAIL)
    assert post(desk, recovery, "approve").status_code == 302
    assert post(desk, recovery, "complete").status_code == 302
    recovery.refresh_from_db()
    assert recovery.state == State.COMPLETED
    assert staff_actions(staff, "recovery:complete").exists()
    assert "/account/reset/" in mail.text(mail.last("alice@new.example"))


def test_an_override_completes_only_after_the_wait_and_two_approvals(
    desk, make_staff, make_client, user
):
    recovery = make_request(user, state=State.AWAITING_PROOF)
    post(desk, recovery, "override", {"reason": "Known maintainer"})
    end_wait(recovery)
    RecoveryRequest.objects.filter(pk=recovery.pk).update(state=State.AWAITING_APPROVAL)
    post(desk, recovery, "approve")
    response = post(desk, recovery, "complete")
    assert response.status_code == 409 and "2 staff approvals" in response.content.decode()
    other = sign_in(make_client(), make_staff("erin"))
    post(other, recovery, "approve")
    assert post(other, recovery, "complete").status_code == 302
    recovery.refresh_from_db()
    assert recovery.state == State.COMPLETED


@pytest.mark.parametrize(("action", "data"), [
    ("assign-me", {}), ("message", {"body": "hi"}), ("proof", {"kind": ProofKind.API_TOKEN}),
    ("approve", {}), ("deny", {"reason": "r"}), ("override", {"reason": "r"}), ("complete", {}),
])
def test_staff_cannot_act_on_a_request_for_their_own_account(client, make_staff, action, data):
    staff = make_staff()
    recovery = make_request(staff, state=State.AWAITING_APPROVAL)
    satisfy(recovery, ProofKind.API_TOKEN, ProofKind.PASSWORD)
    sign_in(client, staff)
    assert "your own account" in client.get(detail_url(recovery)).content.decode()
    response = post(client, recovery, action, data)
    assert response.status_code == 409
    assert "your own account" in response.content.decode()
    recovery.refresh_from_db()
    assert recovery.state == State.AWAITING_APPROVAL and recovery.assigned_to is None
    assert not StaffAction.objects.exists()


def test_a_get_on_an_action_changes_nothing(desk, recovery):
    response = desk.get(f"{detail_url(recovery)}deny/")
    assert response.status_code == 302 and response["Location"] == detail_url(recovery)
    recovery.refresh_from_db()
    assert recovery.state == State.SUBMITTED


def test_a_missing_csrf_token_is_refused(staff, recovery):
    browser = sign_in(Client(enforce_csrf_checks=True), staff)
    response = browser.post(f"{detail_url(recovery)}deny/", {"reason": "spam"})
    assert response.status_code == 403
    recovery.refresh_from_db()
    assert recovery.state == State.SUBMITTED


def spam_of(user, url="https://github.com/alice/spam", **release):
    """Spam, owned by ``user``, whose release (uploaded by ``user`` 60 days ago unless
    ``release`` says otherwise) declares ``url``."""
    project = Project.objects.create(name="Spam", normalized_name="spam")
    Role.objects.create(project=project, user=user, kind=Role.Kind.OWNER)
    release.setdefault("uploader", user)
    release.setdefault("created_at", timezone.now() - timedelta(days=60))
    Release.objects.create(project=project, version="1.0", canonical_version="1",
                           project_urls={"Source": url}, **release)
    return project


def test_a_branch_proof_names_one_of_the_accounts_projects(desk, staff, user, make_user):
    spam_of(make_user(username="bob"))
    recovery = make_request(user)
    response = post(desk, recovery, "proof", {"kind": ProofKind.REPO_BRANCH, "project": "spam"})
    assert response.status_code == 409
    assert "Choose a project of this account" in response.content.decode()
    recovery.refresh_from_db()
    assert recovery.state == State.SUBMITTED and not recovery.proofs.exists()
    assert not StaffAction.objects.exists()


@pytest.mark.parametrize(("release", "why"), [
    ({"uploader": None}, "uploaded by an upload with no account, not by this account"),
    ({"created_at": "recent"}, "less than 30 days before the request"),
    ({"url": "https://git.example/alice/spam"}, "not on a host Relatch checks"),
])
def test_a_branch_proof_needs_a_repository_the_account_declared(desk, staff, user, make_user,
                                                                 release, why):
    """Issue 15 attack 2: a repository counts only if this account's own uploads declared it,
    30 days before the request, on an allowed host."""
    if release.get("created_at") == "recent":
        release["created_at"] = timezone.now() - timedelta(days=3)
    spam_of(user, **release)
    recovery = make_request(user)
    response = post(desk, recovery, "proof", {"kind": ProofKind.REPO_BRANCH, "project": "Spam"})
    assert response.status_code == 409
    assert why in response.content.decode()
    assert not recovery.proofs.exists()


def test_a_branch_proof_for_the_accounts_project(desk, staff, user):
    spam_of(user)
    recovery = make_request(user)
    response = post(desk, recovery, "proof", {"kind": ProofKind.REPO_BRANCH, "project": "Spam"})
    assert response.status_code == 302
    proof = recovery.proofs.get()
    assert proof.evidence["repository"] == "https://github.com/alice/spam"
    action = staff_actions(staff, "recovery:request_proof").get()
    assert (action.before["state"], action.after["state"]) == (State.SUBMITTED,
                                                              State.AWAITING_PROOF)


def test_weak_evidence_is_shown_to_staff(desk, user):
    spam_of(user, author_email="Alice <alice@new.example>")
    recovery = make_request(user, contact="alice@new.example")
    page = desk.get(detail_url(recovery)).content.decode()
    assert "Weak evidence" in page
    assert "names the contact" in page
