"""Steps the recovery attack tests share: accounts with a past, requests filed through the
pages, proofs answered on their pages, staff at the desk and on the JSON API.

Every step goes through the real HTTP interface (the Django test client, whose requests run
their on-commit work and the task queue: tests/conftest.py); only an account's past (how long
ago its password was set, when its addresses were verified) is written into rows, since time
cannot be waited for.
"""

import re
from datetime import timedelta
from typing import Any

from django.utils import timezone

from relatch.accounts.models import Email, User
from relatch.audit.models import EventKind, SecurityEvent
from relatch.index.models import APIToken, Project, Release, Role
from relatch.index.tokens.services import create_token
from relatch.mfa.models import RecoveryCodeSet, TotpDevice, WebAuthnCredential
from relatch.recovery.models import RecoveryProof, RecoveryRequest
from tests.conftest import sign_in
from tests.mfa.factor_rows import add_app

API = "/api/v1"
PROOF_LINK = re.compile(r'href="(/recovery/proof/(\d+)/[^"]+)"')
CODE_IN_MAIL = re.compile(r"Your code: (\d{6})")
PAST = timedelta(days=90)


def with_a_past(user: User, *, days: int = 90) -> User:
    """``user`` as an account that has existed for ``days``: registered, password set and
    addresses verified then, factors enrolled then (a real owner's account)."""
    then = timezone.now() - timedelta(days=days)
    User.objects.filter(pk=user.pk).update(date_joined=then)
    SecurityEvent.objects.filter(user=user).update(created_at=then)
    Email.objects.filter(user=user).update(created_at=then)
    Email.objects.filter(user=user, verified=True).update(verified_at=then)
    for model in (TotpDevice, WebAuthnCredential, RecoveryCodeSet, APIToken):
        model.objects.filter(user=user).update(created_at=then)
    user.refresh_from_db()
    return user


def old_token(user: User, *, days: int = 60) -> str:
    """An upload token the owner made ``days`` ago (kept in CI, say). Tokens need two-step
    sign-in: an account without it had an app then, removed since."""
    had_app = TotpDevice.objects.filter(user=user).exists()
    if not had_app:
        add_app(user)
    row, text = create_token(request=None, user=user, name="ci", project=None, expires_at=None)
    if not had_app:
        TotpDevice.objects.filter(user=user).delete()
    APIToken.objects.filter(pk=row.pk).update(created_at=timezone.now() - timedelta(days=days))
    return text


def owned_project(user: User, name: str = "sandwich", *, urls: dict[str, str] | None = None,
                  uploader: User | None = None, days: int = 90) -> Project:
    """A project ``user`` owns since ``days`` ago, with a release uploaded then."""
    then = timezone.now() - timedelta(days=days)
    project = Project.objects.create(name=name, normalized_name=name, created_at=then)
    Role.objects.create(project=project, user=user, kind=Role.Kind.OWNER, created_at=then)
    Release.objects.create(project=project, version="1.0", canonical_version="1",
                           project_urls=urls or {}, uploader=uploader or user, created_at=then)
    return project


def staff_browser(make_user: Any, make_client: Any, username: str) -> Any:
    """A staff member with a second factor, signed in at the desk, recently re-authenticated."""
    member = make_user(username=username, email=f"{username}@staff.example", is_staff=True)
    add_app(member)
    return sign_in(make_client(), member)


def staff_api(make_user: Any, username: str) -> dict[str, str]:
    """The Authorization header of a staff member's desk token (JSON API)."""
    member = User.objects.filter(username=username).first() or make_user(
        username=username, email=f"{username}@staff.example", is_staff=True)
    if not TotpDevice.objects.filter(user=member).exists():
        add_app(member)
    row, text = create_token(request=None, user=member, name="desk", project=None,
                             expires_at=None)
    APIToken.objects.filter(pk=row.pk).update(purpose=APIToken.Purpose.STAFF)
    return {"Authorization": f"Bearer {text}"}


def file_request(client: Any, mail: Any, *, contact: str, still_has: list[str],
                 username: str = "alice", description: str = "I lost access.") -> tuple[
                     RecoveryRequest, str]:
    """File a request on the pages (form, then the mailed code); the row and the status
    page's path from the "is filed" mail."""
    response = client.post("/recovery/request/new/", {
        "username": username, "contact_email": contact, "still_has": still_has,
        "description": description, "agreed": "on", "acknowledged": "on"})
    assert response.status_code == 302, response.content.decode()[:2000]
    code = CODE_IN_MAIL.search(mail.text(mail.last(contact)))
    assert code, mail.text(mail.last(contact))
    response = client.post("/recovery/request/confirm/", {"code": code.group(1)})
    assert response["Location"] == "/recovery/request/filed/"
    filed = next(m for m in mail.to(contact) if "/recovery/request/status/" in mail.text(m))
    return (RecoveryRequest.objects.filter(contact_email=contact).latest("pk"),
            mail.link_to(filed, "/recovery/request/status/"))


def proof_pages(client: Any, status_path: str) -> dict[str, str]:
    """The pending proofs the status page links to, by kind."""
    page = client.get(status_path).content.decode()
    return {RecoveryProof.objects.get(pk=int(pk)).kind: path.replace("&amp;", "&")
            for path, pk in PROOF_LINK.findall(page)}


def code_mailed_to(mail: Any, address: str) -> str:
    found = re.search(r"The code is:\s+(\d{6})", mail.text(mail.last(address)))
    assert found, mail.text(mail.last(address))
    return found.group(1)


def answer_mailbox_proof(client: Any, mail: Any, path: str, address: str) -> Any:
    """The account_email proof: have a code sent to ``address``, read it, enter it."""
    email = Email.objects.get(address__iexact=address)
    sent = client.post(path, {"step": "send", "address": email.pk}, follow=True)
    assert "A code is on its way" in sent.content.decode()
    return client.post(path, {"step": "code", "code": code_mailed_to(mail, address)},
                       follow=True)


def reset_password_by_mail(client: Any, mail: Any, address: str, password: str) -> None:
    """The mailbox's holder resets the password with the mailed link."""
    assert client.post("/account/reset/", {"identifier": address}).status_code == 200
    link = mail.link_to(mail.last(address), "/account/reset/")
    response = client.get(link)
    assert response.status_code == 302
    response = client.post(response["Location"], {"new_password1": password,
                                                   "new_password2": password})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert SecurityEvent.objects.filter(kind=EventKind.PASSWORD_RESET).exists()


def desk_detail(client: Any, headers: dict[str, str], recovery: RecoveryRequest) -> Any:
    response = client.get(f"{API}/desk/requests/{recovery.public_id}", headers=headers)
    assert response.status_code == 200, response.content
    return response.json()


def api_post(client: Any, path: str, body: dict[str, Any] | None = None,
             headers: dict[str, str] | None = None) -> Any:
    return client.post(API + path, body or {}, content_type="application/json",
                       headers=headers or {})
