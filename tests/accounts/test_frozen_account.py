"""A frozen account (DESIGN §5, relatch.accounts.freeze): after its owner says "this wasn't
me" to a recovery request, a hijacker who holds a session must not entrench themselves.

Every change that would let someone keep the account is refused through the real pages and
the JSON API — addresses, second factors and recovery codes, the self-service recovery, new
API tokens, project roles, releases — with the freeze message, and changes nothing: no row,
no security event, no mail. What only takes access away (changing the password, revoking a
token, ending a session, declining an invitation) still works. Once staff unfreeze, the same
request goes through. Uploads are in tests/index/test_frozen_uploads.py.
"""

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pyotp
import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from relatch.accounts.emails import tokens as email_tokens
from relatch.accounts.emails.services import EmailChangeError, add_email
from relatch.accounts.freeze import AccountFrozenError, freeze_account
from relatch.accounts.models import Email, User, UserSession
from relatch.accounts.sessions.services import session_digest
from relatch.audit.models import EventKind, SecurityEvent
from relatch.index.models import APIToken, Project, Release, Role, RoleInvitation
from relatch.index.tokens.services import create_token
from relatch.mfa.models import (
    RecoveryCode,
    RecoveryCodeSet,
    SelfServiceRecovery,
    TotpDevice,
    WebAuthnCredential,
)
from relatch.mfa.recovery_codes.services import generate_recovery_codes
from tests.conftest import PASSWORD, CommittingClient, sign_in
from tests.index.project_rows import make_project, make_release
from tests.mfa.factor_rows import add_app, add_key
from tests.mfa.signin_flow import (
    APP,
    CHECK_MAIL,
    CODE,
    RECOVERY_STATUS,
    START_RECOVERY,
    app_code,
    enrol_app,
    options_on,
    password_step,
)
from tests.mfa.soft_authenticator import SoftAuthenticator

pytestmark = pytest.mark.django_db

API = "/api/v1"
FORM_TOKEN = re.compile(r'name="form_token" value="([^"]+)"')
TOTP_SECRET = re.compile(r'<code class="totp-secret">([A-Z2-7 ]+)</code>')
DONE = {200, 201, 302}


@dataclass
class World:
    """Alice (the account that gets frozen), signed in and freshly re-authenticated, with
    something of every kind a hijacker would want to change."""

    alice: User
    bob: User
    browser: CommittingClient
    make_client: Callable[..., CommittingClient]
    make_user: Callable[..., User]
    secret: str  # of alice's authenticator app
    project: Project  # alice owns it, bob maintains it
    theirs: Project  # bob owns it, alice maintains it

    def work_address(self) -> Email:
        return Email.objects.get(address="alice@work.example")

    def bobs_role(self) -> Role:
        return Role.objects.get(project=self.project, user=self.bob)

    def invitation(self) -> RoleInvitation:
        """bob invites alice to a third project of his."""
        invited = make_project("invited", owners=(self.bob,))
        return RoleInvitation.objects.create(
            project=invited, invitee=self.alice, inviter=self.bob, kind=Role.Kind.MAINTAINER,
            expires_at=timezone.now() + timedelta(days=7),
        )


@pytest.fixture
def world(
    user: User, make_user: Any, make_client: Any, client: CommittingClient
) -> World:
    user.emails.create(address="alice@work.example", verified=True,
                       verified_at=user.date_joined)
    secret = enrol_app(user)  # a real app (the sign-in flow checks its codes) and saved codes
    add_key(user, "Blue key")
    bob = make_user(username="bob", email="bob@example.org")
    add_app(bob)
    project = make_project("Demo_Project", owners=(user,), maintainers=(bob,))
    make_release(project, "1.0")
    make_release(project, "2.0", yanked=True, yanked_reason="broken")
    theirs = make_project("theirs", owners=(bob,), maintainers=(user,))
    return World(alice=user, bob=bob, browser=sign_in(client, user), make_client=make_client,
                 make_user=make_user, secret=secret, project=project, theirs=theirs)


def pass_the_wait(recovery: SelfServiceRecovery) -> None:
    """The self-service recovery's wait is over (moved in the database, never slept)."""
    now = timezone.now()
    SelfServiceRecovery.objects.filter(pk=recovery.pk).update(
        started_at=now - settings.SELF_RECOVERY_WAIT - timedelta(minutes=1),
        ends_at=now - timedelta(minutes=1),
    )


@dataclass(frozen=True)
class Attempt:
    """One request of the frozen account: how it is sent (again and again), the status of
    its refusal, and the event it writes once it goes through (None: it writes none)."""

    send: Callable[[], Any]
    status: int
    kind: EventKind | None
    account: User  # the account that is frozen


def said(response: Any) -> str:
    return html.unescape(response.content.decode())


def form_token(client: Client, page: str) -> str:
    found = FORM_TOKEN.search(client.get(page).content.decode())
    assert found, f"no one-time form on {page}"
    return found.group(1)


def manage(name: str, project: Project, *args: object) -> str:
    return reverse(f"manage:{name}", args=[project.normalized_name, *args])


# --- addresses -------------------------------------------------------------------------------


def add_address(w: World) -> Attempt:
    def send() -> Any:
        return w.browser.post(reverse("emails:add"), {"address": "thief@example.net"})

    return Attempt(send, 403, EventKind.EMAIL_ADDED, w.alice)


def verify_address(w: World) -> Attempt:
    """The link mailed to an address added just before the owner's "this wasn't me"."""
    added = w.alice.emails.create(address="thief@example.net")
    link = urlsplit(email_tokens.verification_link(email_id=added.pk)).path
    return Attempt(lambda: w.browser.post(link), 403, EventKind.EMAIL_VERIFIED, w.alice)


def make_primary(w: World) -> Attempt:
    url = reverse("emails:primary", args=[w.work_address().pk])
    return Attempt(lambda: w.browser.post(url), 403, EventKind.EMAIL_PRIMARY_CHANGED, w.alice)


def remove_address(w: World) -> Attempt:
    url = reverse("emails:remove", args=[w.work_address().pk])
    return Attempt(lambda: w.browser.post(url), 403, EventKind.EMAIL_REMOVED, w.alice)


def replace_unverified_address(w: World) -> Attempt:
    """An account whose only address is unverified swaps it for another."""
    newbie = w.make_user(username="newbie", email="newbie@exampel.org", verified=False)
    browser = sign_in(w.make_client(), newbie)
    url = reverse("emails:replace", args=[newbie.emails.get().pk])

    def send() -> Any:
        return browser.post(url, {"address": "thief@example.net"})

    return Attempt(send, 403, EventKind.EMAIL_REPLACED, newbie)


# --- second factors and recovery codes -------------------------------------------------------


def start_app_setup(w: World) -> Attempt:
    """The setup page shows no secret that could not be bound."""
    url = reverse("totp:setup") + "?replace=1"
    return Attempt(lambda: w.browser.get(url), 403, None, w.alice)


def confirm_app_setup(w: World) -> Attempt:
    """A secret shown before the freeze cannot be bound after it."""
    found = TOTP_SECRET.search(w.browser.get(reverse("totp:setup") + "?replace=1").text)
    assert found, "no secret on the setup page"
    secret = found.group(1).replace(" ", "")

    def send() -> Any:
        return w.browser.post(reverse("totp:confirm"), {"code": pyotp.TOTP(secret).now()})

    return Attempt(send, 403, EventKind.TOTP_ADDED, w.alice)


def remove_app(w: World) -> Attempt:
    # 409: the app page's status for every refused removal.
    return Attempt(lambda: w.browser.post(reverse("totp:remove")), 409,
                   EventKind.TOTP_REMOVED, w.alice)


def add_security_key(w: World) -> Attempt:
    def send() -> Any:
        options = options_on(w.browser.get(reverse("webauthn:add")))
        answer = SoftAuthenticator().register(options)
        return w.browser.post(reverse("webauthn:add"), {"label": "Thief key", "credential": answer})

    return Attempt(send, 403, EventKind.WEBAUTHN_ADDED, w.alice)


def rename_security_key(w: World) -> Attempt:
    url = reverse("webauthn:rename", args=[WebAuthnCredential.objects.get(user=w.alice).pk])
    return Attempt(lambda: w.browser.post(url, {"label": "Old key"}), 403,
                   EventKind.WEBAUTHN_RENAMED, w.alice)


def remove_security_key(w: World) -> Attempt:
    url = reverse("webauthn:remove", args=[WebAuthnCredential.objects.get(user=w.alice).pk])
    return Attempt(lambda: w.browser.post(url), 403, EventKind.WEBAUTHN_REMOVED, w.alice)


def make_new_codes(w: World) -> Attempt:
    page = reverse("recovery_codes:manage")

    def send() -> Any:
        token = form_token(w.browser, page)
        return w.browser.post(reverse("recovery_codes:generate"), {"form_token": token})

    return Attempt(send, 403, EventKind.RECOVERY_CODES_GENERATED, w.alice)


def confirm_saved_codes(w: World) -> Attempt:
    """A set made just before the freeze cannot be confirmed after it."""
    codes = generate_recovery_codes(request=None, user=w.alice)

    def send() -> Any:
        return w.browser.post(reverse("recovery_codes:confirm"), {"code": codes[3]})

    return Attempt(send, 403, EventKind.RECOVERY_CODES_CONFIRMED, w.alice)


def start_self_recovery(w: World) -> Attempt:
    """Password and app code from a new browser, then "I no longer have access to my email"."""
    browser = w.make_client()
    password_step(browser)
    held = browser.post(APP, {"code": app_code(w.alice, w.secret)})
    assert held["Location"] == CHECK_MAIL
    return Attempt(lambda: browser.post(START_RECOVERY), 403,
                   EventKind.SELF_RECOVERY_STARTED, w.alice)


def complete_self_recovery(w: World) -> Attempt:
    """A self-service recovery whose wait ended: its browser would sign in, trusted."""
    browser = w.make_client()
    password_step(browser)
    browser.post(APP, {"code": app_code(w.alice, w.secret)})
    assert browser.post(START_RECOVERY)["Location"] == RECOVERY_STATUS
    pass_the_wait(SelfServiceRecovery.objects.get(user=w.alice))
    password_step(browser)

    def send() -> Any:
        return browser.post(APP, {"code": app_code(w.alice, w.secret)})

    return Attempt(send, 403, EventKind.SELF_RECOVERY_COMPLETED, w.alice)


# --- API tokens ------------------------------------------------------------------------------


def create_token_page(w: World) -> Attempt:
    page = reverse("tokens:create")

    def send() -> Any:
        data = {"name": "laptop", "scope": "all", "expiry": "90", "expires_on": "",
                "form_token": form_token(w.browser, page)}
        return w.browser.post(page, data)

    return Attempt(send, 403, EventKind.API_TOKEN_CREATED, w.alice)


def create_token_api(w: World) -> Attempt:
    def send() -> Any:
        return w.browser.post(f"{API}/account/tokens", {"name": "ci"},
                              content_type="application/json")

    return Attempt(send, 403, EventKind.API_TOKEN_CREATED, w.alice)


# --- project roles and releases --------------------------------------------------------------


def invite_someone(w: World) -> Attempt:
    w.make_user(username="mallory", email="mallory@example.net")
    url = manage("invite", w.project)
    return Attempt(lambda: w.browser.post(url, {"username": "mallory", "kind": "owner"}), 403,
                   EventKind.ROLE_INVITATION_SENT, w.alice)


def accept_invitation(w: World) -> Attempt:
    url = reverse("manage:accept_invitation", args=[w.invitation().pk])
    return Attempt(lambda: w.browser.post(url), 403, EventKind.ROLE_INVITATION_ACCEPTED, w.alice)


def change_role(w: World) -> Attempt:
    url = manage("change_role", w.project, w.bobs_role().pk)
    return Attempt(lambda: w.browser.post(url, {"kind": "owner"}), 403, EventKind.ROLE_CHANGED,
                   w.alice)


def remove_member(w: World) -> Attempt:
    url = manage("remove_member", w.project, w.bobs_role().pk)
    return Attempt(lambda: w.browser.post(url), 403, EventKind.ROLE_REMOVED, w.alice)


def leave_project(w: World) -> Attempt:
    url = manage("leave", w.theirs)
    return Attempt(lambda: w.browser.post(url), 403, EventKind.ROLE_REMOVED, w.alice)


def yank_release(w: World) -> Attempt:
    url = manage("yank", w.project, "1.0")
    return Attempt(lambda: w.browser.post(url, {"reason": "gone"}), 403,
                   EventKind.RELEASE_YANKED, w.alice)


def unyank_release(w: World) -> Attempt:
    url = manage("unyank", w.project, "2.0")
    return Attempt(lambda: w.browser.post(url), 403, EventKind.RELEASE_UNYANKED, w.alice)


def delete_release(w: World) -> Attempt:
    url = manage("delete_release", w.project, "1.0")
    return Attempt(lambda: w.browser.post(url, {"confirmation": "1.0"}), 403,
                   EventKind.RELEASE_DELETED, w.alice)


REFUSED: dict[str, Callable[[World], Attempt]] = {
    f.__name__: f for f in [
        add_address, verify_address, make_primary, remove_address, replace_unverified_address,
        start_app_setup, confirm_app_setup, remove_app, add_security_key, rename_security_key,
        remove_security_key, make_new_codes, confirm_saved_codes, start_self_recovery,
        complete_self_recovery, create_token_page, create_token_api, invite_someone,
        accept_invitation, change_role, remove_member, leave_project, yank_release,
        unyank_release, delete_release,
    ]
}


def snapshot() -> dict[str, list[Any]]:
    """Every row a frozen account could try to change, and every security event."""
    return {
        "emails": list(Email.objects.order_by("pk").values_list("address", "verified", "primary")),
        "apps": list(TotpDevice.objects.order_by("pk").values_list("pk", flat=True)),
        "keys": list(WebAuthnCredential.objects.order_by("pk").values_list("pk", "label")),
        "codes": list(RecoveryCodeSet.objects.order_by("pk").values_list("pk", "confirmed_at")),
        "recoveries": list(SelfServiceRecovery.objects.order_by("pk").values_list("pk", "state")),
        "tokens": list(APIToken.objects.order_by("pk").values_list("pk", "revoked_at")),
        "roles": list(Role.objects.order_by("pk").values_list("project", "user", "kind")),
        "invitations": list(RoleInvitation.objects.order_by("pk").values_list("pk", "state")),
        "releases": list(Release.objects.order_by("pk").values_list("pk", "yanked")),
        "events": list(SecurityEvent.objects.order_by("pk").values_list("pk", "kind")),
    }


@pytest.mark.parametrize("case", REFUSED)
def test_a_frozen_account_cannot_entrench_a_hijacker(case: str, world: World, mail: Any) -> None:
    attempt = REFUSED[case](world)
    freeze_account(user=attempt.account, reason="test")
    before, mail_before = snapshot(), len(mail.messages)
    kind_before = SecurityEvent.objects.filter(kind=attempt.kind).count()

    response = attempt.send()

    assert response.status_code == attempt.status, said(response)[:2000]
    assert "this account is frozen" in said(response)
    if response["Content-Type"].startswith("application/json"):
        assert "this account is frozen" in response.json()["detail"]
    assert snapshot() == before
    assert SecurityEvent.objects.filter(kind=attempt.kind).count() == kind_before
    assert len(mail.messages) == mail_before  # nothing announced: nothing happened
    assert User.objects.get(pk=attempt.account.pk).is_frozen


@pytest.mark.parametrize("case", REFUSED)
def test_once_unfrozen_the_same_request_goes_through(case: str, world: World) -> None:
    attempt = REFUSED[case](world)
    freeze_account(user=attempt.account, reason="test")
    assert attempt.send().status_code == attempt.status
    User.objects.filter(pk=attempt.account.pk).update(is_frozen=False)
    kind_before = SecurityEvent.objects.filter(kind=attempt.kind).count()

    response = attempt.send()

    assert response.status_code in DONE, said(response)[:2000]
    assert "this account is frozen" not in said(response)
    if attempt.kind is not None:
        assert SecurityEvent.objects.filter(kind=attempt.kind).count() > kind_before


# --- what only takes access away stays possible ----------------------------------------------


def change_password(w: World) -> Attempt:
    data = {"current_password": PASSWORD, "new_password1": "a completely different passphrase",
            "new_password2": "a completely different passphrase"}
    return Attempt(lambda: w.browser.post(reverse("passwords:change"), data), 302,
                   EventKind.PASSWORD_CHANGED, w.alice)


def revoke_token_page(w: World) -> Attempt:
    row, _text = create_token(request=None, user=w.alice, name="ci", project=None,
                              expires_at=None)
    url = reverse("tokens:revoke", args=[row.pk])
    return Attempt(lambda: w.browser.post(url), 302, EventKind.API_TOKEN_REVOKED, w.alice)


def revoke_token_api(w: World) -> Attempt:
    row, _text = create_token(request=None, user=w.alice, name="ci", project=None,
                              expires_at=None)

    def send() -> Any:
        return w.browser.post(f"{API}/account/tokens/{row.pk}/revoke", {},
                              content_type="application/json")

    return Attempt(send, 200, EventKind.API_TOKEN_REVOKED, w.alice)


def end_another_session(w: World) -> Attempt:
    other = sign_in(w.make_client(), w.alice)
    row = UserSession.objects.get(session_digest=session_digest(other.session.session_key))
    url = reverse("sessions:end", args=[row.pk])
    return Attempt(lambda: w.browser.post(url), 302, EventKind.SESSION_ENDED, w.alice)


def end_all_other_sessions(w: World) -> Attempt:
    sign_in(w.make_client(), w.alice)
    return Attempt(lambda: w.browser.post(reverse("sessions:end_others")), 302,
                   EventKind.OTHER_SESSIONS_ENDED, w.alice)


def decline_invitation(w: World) -> Attempt:
    url = reverse("manage:decline_invitation", args=[w.invitation().pk])
    return Attempt(lambda: w.browser.post(url), 302, EventKind.ROLE_INVITATION_DECLINED, w.alice)


ALLOWED: dict[str, Callable[[World], Attempt]] = {
    f.__name__: f for f in [
        change_password, revoke_token_page, revoke_token_api, end_another_session,
        end_all_other_sessions, decline_invitation,
    ]
}


@pytest.mark.parametrize("case", ALLOWED)
def test_taking_access_away_still_works_while_frozen(case: str, world: World) -> None:
    attempt = ALLOWED[case](world)
    freeze_account(user=attempt.account, reason="test")

    response = attempt.send()

    assert response.status_code == attempt.status, said(response)[:2000]
    assert SecurityEvent.objects.filter(user=attempt.account, kind=attempt.kind).exists()
    assert User.objects.get(pk=attempt.account.pk).is_frozen  # and it stays frozen


def test_a_stale_user_object_does_not_get_past_the_freeze(world: World) -> None:
    """A service handed a user loaded before the freeze reads the freeze from the database."""
    stale = User.objects.get(pk=world.alice.pk)
    freeze_account(user=world.alice, reason="test")
    assert not stale.is_frozen
    with pytest.raises(EmailChangeError) as refused:
        add_email(request=None, user=stale, address="thief@example.net")
    assert refused.value.status == 403
    assert refused.value.message == AccountFrozenError("Adding an email address").message
    assert not Email.objects.filter(address="thief@example.net").exists()


def test_a_refused_completion_spends_no_recovery_code(world: World) -> None:
    """The self-service recovery refused at its end keeps the code unspent and the
    recovery waiting: the owner (or staff) finds it as it was."""
    codes = generate_recovery_codes(request=None, user=world.alice)
    browser = world.make_client()
    password_step(browser)
    browser.post(CODE, {"code": codes[0]})
    assert browser.post(START_RECOVERY)["Location"] == RECOVERY_STATUS
    recovery = SelfServiceRecovery.objects.get(user=world.alice)
    pass_the_wait(recovery)
    freeze_account(user=world.alice, reason="test")
    password_step(browser)

    response = browser.post(CODE, {"code": codes[0]})

    assert response.status_code == 403
    assert "Completing a self-service recovery is not possible now" in said(response)
    recovery.refresh_from_db()
    assert recovery.state == SelfServiceRecovery.State.WAITING
    assert not RecoveryCode.objects.filter(used_at__isnull=False).exists()
    assert browser.session.get("_auth_user_id") is None
