"""Email addresses (issue 2, point 5): verification links, several addresses, primary, removal,
replacing a typo, and a notice to every verified address for every change."""

import time
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import pytest
from django.core import signing
from django.urls import reverse
from django.utils import timezone

from relatch.accounts.emails import tokens
from relatch.accounts.models import Email, User
from relatch.audit.models import EventKind, SecurityEvent
from tests.conftest import CommittingClient, sign_in

pytestmark = pytest.mark.django_db

VERIFY_PREFIX = "/account/emails/verify/"
SECURITY_FOOTER = "If this wasn't you"


def path_of(link: str) -> str:
    """The path of a mailed link (whatever BASE_URL the settings were loaded with)."""
    return urlsplit(link).path


def fresh_link(email_id: int) -> str:
    """The verification link a mail delivered now would carry."""
    return path_of(tokens.verification_link(email_id=email_id))


def url(name: str, email: Email | None = None) -> str:
    return reverse(f"emails:{name}", args=[email.pk] if email else [])


def verify_link(mail: Any, address: str) -> str:
    return path_of(mail.link_to(mail.last(address), VERIFY_PREFIX))


def events(user: User, kind: EventKind) -> list[SecurityEvent]:
    return list(SecurityEvent.objects.filter(user=user, kind=kind))


def add_verified(user: User, address: str, *, primary: bool = False) -> Email:
    return Email.objects.create(
        user=user, address=address, verified=True, verified_at=timezone.now(), primary=primary
    )


def subjects(mail: Any, address: str) -> list[str]:
    return [str(m["Subject"]) for m in mail.to(address)]


@pytest.fixture
def newbie(make_user: Any) -> User:
    """An account whose only address is unverified (just registered)."""
    return make_user(username="newbie", email="newbie@exampel.org", verified=False)


# --- the verification link --------------------------------------------------------------------


def test_added_address_is_verified_through_its_link_and_the_others_are_told(signed_in, user, mail):
    """NIST N9 / ASVS 6.3.7: the verified addresses hear of the new one."""
    assert signed_in.post(url("add"), {"address": "alice@work.example"}).status_code == 302
    link = verify_link(mail, "alice@work.example")
    mail.clear()

    assert signed_in.get(link).status_code == 200
    response = signed_in.post(link)
    assert response.status_code == 302
    assert response["Location"] == url("manage")
    assert "alice@work.example is verified" in signed_in.get(url("manage")).content.decode()

    email = Email.objects.get(address="alice@work.example")
    assert email.verified and email.verified_at is not None and not email.primary
    assert len(events(user, EventKind.EMAIL_VERIFIED)) == 1
    notice = mail.last("alice@example.org")
    assert notice["Subject"] == "A new address was verified on your Relatch account"
    assert SECURITY_FOOTER in mail.text(notice)
    assert mail.to("alice@work.example") == []


def test_first_verified_address_tells_nobody_and_becomes_primary(client, newbie, mail):
    """Verification alone needs no notice when no other verified address exists."""
    typo = Email.objects.get(user=newbie)
    second = Email.objects.create(user=newbie, address="newbie@example.org")
    link = fresh_link(second.pk)

    assert client.post(link).status_code == 302
    second.refresh_from_db()
    typo.refresh_from_db()
    assert second.verified and second.primary
    assert not typo.primary
    assert mail.messages == []


def test_verifying_anonymously_lands_on_the_verified_page(client, newbie, mail):
    refused = client.post(url("resend", Email.objects.get(user=newbie)))  # needs signing in
    assert refused["Location"].startswith(reverse("signin:login"))
    assert mail.messages == []
    link = fresh_link(Email.objects.get(user=newbie).pk)
    response = client.post(link, follow=True)
    assert response.status_code == 200
    assert "Address verified" in response.content.decode()


def test_verify_page_keeps_its_token_out_of_referers_and_caches(client, newbie):
    """OWASP FP5: Referrer-Policy strict-origin on the page whose URL holds the token."""
    link = fresh_link(Email.objects.get(user=newbie).pk)
    response = client.get(link)
    assert response["Referrer-Policy"] == "strict-origin"
    assert "no-store" in response["Cache-Control"]


def tampered(link: str) -> str:
    token = link.removeprefix(VERIFY_PREFIX).rstrip("/")
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    return f"{VERIFY_PREFIX}{flipped}/"


def other_key(link: str) -> str:
    """The right claim, signed with a key that is not the server's."""
    claim = signing.loads(
        link.removeprefix(VERIFY_PREFIX).rstrip("/"), salt="relatch.accounts.emails.verify"
    )
    token = signing.dumps(
        claim, key="another-key-" + "y" * 40, salt="relatch.accounts.emails.verify"
    )
    return f"{VERIFY_PREFIX}{token}/"


@pytest.mark.parametrize(
    "forge",
    [
        tampered,
        other_key,
        lambda link: f"{VERIFY_PREFIX}garbage/",
        lambda link: f"{VERIFY_PREFIX}{'A' * 3000}/",
        lambda link: link.replace(":", "", 1),
    ],
    ids=["flipped", "other-key", "garbage", "overlong", "truncated"],
)
@pytest.mark.parametrize("method", ["get", "post"])
def test_forged_or_garbled_link_is_refused(client, newbie, mail, forge, method):
    """OWASP FP4, ASVS 6.4.1."""
    link = fresh_link(Email.objects.get(user=newbie).pk)
    response = getattr(client, method)(forge(link))
    assert response.status_code == 400
    assert "This link is not valid" in response.content.decode()
    assert not Email.objects.get(user=newbie).verified
    assert events(newbie, EventKind.EMAIL_VERIFIED) == []


def link_made_hours_ago(email: Email, hours: float) -> str:
    """A link as the mail would have carried it ``hours`` ago (signing's clock turned back:
    waiting a day is not an option in a test)."""
    past = signing.b62_encode(int(time.time() - hours * 3600))
    with mock.patch.object(signing.TimestampSigner, "timestamp", return_value=past):
        return fresh_link(email.pk)


def test_expired_link_is_refused(client, newbie):
    """OWASP FP4: links expire after settings.EMAIL_VERIFICATION_MAX_AGE (24 h)."""
    email = Email.objects.get(user=newbie)
    response = client.post(link_made_hours_ago(email, 24.1))
    assert response.status_code == 400
    assert "This link has expired" in response.content.decode()
    email.refresh_from_db()
    assert not email.verified


def test_link_just_inside_its_lifetime_works(client, newbie):
    email = Email.objects.get(user=newbie)
    assert client.post(link_made_hours_ago(email, 23.9)).status_code == 302
    email.refresh_from_db()
    assert email.verified


def test_shorter_lifetime_in_settings_applies(client, newbie, settings):
    email = Email.objects.get(user=newbie)
    link = link_made_hours_ago(email, 2)
    settings.EMAIL_VERIFICATION_MAX_AGE = 3600
    assert client.post(link).status_code == 400


def test_link_works_once(client, newbie, make_client):
    """ASVS 6.5.1: single use."""
    link = fresh_link(Email.objects.get(user=newbie).pk)
    link = link
    assert client.post(link).status_code == 302
    again = make_client().post(link)
    assert again.status_code == 400
    assert "already used" in again.content.decode()
    assert len(events(newbie, EventKind.EMAIL_VERIFIED)) == 1


def test_link_to_a_removed_address_is_refused(signed_in, user, mail):
    signed_in.post(url("add"), {"address": "old@work.example"})
    link = verify_link(mail, "old@work.example")
    signed_in.post(url("remove", Email.objects.get(address="old@work.example")))
    response = signed_in.post(link)
    assert response.status_code == 400
    assert "removed from its account" in response.content.decode()


def test_link_to_a_replaced_address_is_refused_and_the_new_one_works(client, newbie, mail):
    sign_in(client, newbie)
    email = Email.objects.get(user=newbie)
    client.post(url("resend", email))
    old_link = verify_link(mail, "newbie@exampel.org")

    response = client.post(url("replace", email), {"address": "newbie@example.org"})
    assert response.status_code == 302
    refused = client.post(old_link)
    assert refused.status_code == 400
    assert "changed after the link was sent" in refused.content.decode()

    assert client.post(verify_link(mail, "newbie@example.org")).status_code == 302
    email.refresh_from_db()
    assert (email.address, email.verified, email.primary) == ("newbie@example.org", True, True)


def test_address_verified_on_another_account_cannot_be_verified_again(client, user, newbie):
    """A verified address belongs to one account (constraint email_verified_ci_unique)."""
    claim = Email.objects.create(user=newbie, address="ALICE@example.org")
    link = fresh_link(claim.pk)
    response = client.post(link)
    assert response.status_code == 400
    assert "already verified on another Relatch account" in response.content.decode()
    claim.refresh_from_db()
    assert not claim.verified


# --- an account without a verified address ----------------------------------------------------


def test_unverified_account_is_sent_to_the_address_page(client, newbie):
    sign_in(client, newbie)
    for page in (reverse("account:overview"), reverse("sessions:list")):
        response = client.get(page)
        assert response.status_code == 302
        assert response["Location"] == url("manage")
    page = client.get(url("manage")).content.decode()
    assert "Verify your email address to use your account" in page
    assert "Mistyped it?" in page
    assert "Send the verification link again" in page
    assert "Add an address" not in page


@pytest.mark.parametrize("action", ["add", "primary", "remove"])
def test_unverified_account_can_only_verify_or_replace(client, newbie, mail, action):
    sign_in(client, newbie)
    email = Email.objects.get(user=newbie)
    target = url("add") if action == "add" else url(action, email)
    response = client.post(target, {"address": "other@example.org"})
    assert response.status_code == 302
    assert response["Location"] == url("manage")
    assert list(Email.objects.filter(user=newbie)) == [email]
    assert mail.messages == []


# --- add --------------------------------------------------------------------------------------


def test_add_address(signed_in, user, mail):
    response = signed_in.post(url("add"), {"address": "Alice@Work.Example"})
    assert response.status_code == 302
    email = Email.objects.get(user=user, address="Alice@work.example")
    assert not email.verified and not email.primary
    assert events(user, EventKind.EMAIL_ADDED)[0].details == {"address": "Alice@work.example"}
    assert subjects(mail, "Alice@work.example") == ["Verify your address for Relatch"]
    notice = mail.last("alice@example.org")
    assert notice["Subject"] == "A new address was added to your Relatch account"
    assert "Alice@work.example" in mail.text(notice)
    page = signed_in.get(url("manage")).content.decode()
    assert "Alice@work.example" in page and "Not verified" in page


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("not-an-address", "Enter a valid email address."),
        ("a@b@example.org", "Enter a valid email address."),
        ("", "This field is required."),
        ("a" * 250 + "@example.org", "at most 254 characters"),
        ("alice@example.org", "already on your account"),
        ("ALICE@EXAMPLE.ORG", "already on your account"),
    ],
)
def test_add_refuses_bad_addresses(signed_in, user, mail, address, reason):
    response = signed_in.post(url("add"), {"address": address})
    assert response.status_code == 400
    assert reason in response.content.decode()
    assert Email.objects.filter(user=user).count() == 1
    assert mail.messages == []


def test_add_refuses_an_eleventh_address(signed_in, user, mail):
    for n in range(9):
        Email.objects.create(user=user, address=f"alice{n}@example.org")
    response = signed_in.post(url("add"), {"address": "alice10@example.org"})
    assert response.status_code == 400
    assert "at most 10 addresses" in response.content.decode()
    assert Email.objects.filter(user=user).count() == 10
    assert mail.messages == []


def test_add_needs_a_recent_password(client, user, mail):
    """ASVS 7.5.1: re-authentication before changing an email address."""
    sign_in(client, user, reauthenticated=False)
    response = client.post(url("add"), {"address": "alice@work.example"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("signin:reauthenticate"))
    assert "next=%2Faccount%2Femails%2Fadd%2F" in response["Location"]
    assert Email.objects.filter(user=user).count() == 1
    assert mail.messages == []
    # After re-authenticating, the "next" URL shows the page again; GET changes nothing.
    session = client.session
    session["relatch_reauth_at"] = int(time.time())
    session.save()
    assert client.get(url("add"))["Location"] == url("manage")
    assert Email.objects.filter(user=user).count() == 1


def test_add_form_sent_twice_adds_once(signed_in, user, mail):
    first = signed_in.post(url("add"), {"address": "alice@work.example"})
    second = signed_in.post(url("add"), {"address": "alice@work.example"})
    assert first.status_code == 302
    assert second.status_code == 400
    assert "already on your account" in second.content.decode()
    assert Email.objects.filter(user=user, address="alice@work.example").count() == 1
    assert len(mail.to("alice@work.example")) == 1


def test_add_without_csrf_token_is_refused(user, mail):
    browser = sign_in(CommittingClient(enforce_csrf_checks=True), user)
    response = browser.post(url("add"), {"address": "alice@work.example"})
    assert response.status_code == 403
    assert "This form has expired" in response.content.decode()
    assert Email.objects.filter(user=user).count() == 1


def test_adding_another_accounts_address_reveals_nothing_until_its_link_is_used(
    signed_in, make_user, mail
):
    """The page does not say whose an address is; only its mailbox learns it is taken."""
    make_user(username="bob", email="bob@example.org")
    response = signed_in.post(url("add"), {"address": "bob@example.org"})
    assert response.status_code == 302
    refused = signed_in.post(verify_link(mail, "bob@example.org"))
    assert refused.status_code == 400
    assert "already verified on another Relatch account" in refused.content.decode()


def test_adding_addresses_is_limited_per_account(signed_in, user):
    for n in range(10):
        signed_in.post(url("add"), {"address": f"a{n}@work.example"})
        signed_in.post(url("remove", Email.objects.get(address=f"a{n}@work.example")))
    response = signed_in.post(url("add"), {"address": "a10@work.example"})
    assert response.status_code == 429
    assert "too many addresses in the last hour" in response.content.decode()
    assert not Email.objects.filter(address="a10@work.example").exists()


# --- resend -----------------------------------------------------------------------------------


def test_resend_is_limited_per_address(client, newbie, mail):
    sign_in(client, newbie)
    email = Email.objects.get(user=newbie)
    for _ in range(3):
        assert client.post(url("resend", email)).status_code == 302
    assert len(mail.to("newbie@exampel.org")) == 3
    assert len(events(newbie, EventKind.EMAIL_VERIFICATION_SENT)) == 3

    response = client.post(url("resend", email))
    assert response.status_code == 429
    assert "several links in the last hour" in response.content.decode()
    assert len(mail.to("newbie@exampel.org")) == 3
    # Every link sent is a working one (the first of them here).
    first_link = mail.link_to(mail.to("newbie@exampel.org")[0], VERIFY_PREFIX)
    assert client.post(path_of(first_link)).status_code == 302


def test_resend_refuses_a_verified_address(signed_in, user, mail):
    response = signed_in.post(url("resend", Email.objects.get(user=user)))
    assert response.status_code == 400
    assert "already verified" in response.content.decode()
    assert mail.messages == []


@pytest.mark.parametrize("action", ["resend", "primary", "remove"])
def test_actions_refuse_another_accounts_address(signed_in, make_user, mail, action):
    bob = make_user(username="bob", email="bob@example.org", verified=False)
    email = Email.objects.get(user=bob)
    response = signed_in.post(url(action, email))
    assert response.status_code == 400
    assert "That address is not on your account" in response.content.decode()
    assert Email.objects.get(pk=email.pk).user == bob
    assert mail.messages == []


def test_get_on_an_action_changes_nothing(signed_in, user):
    email = Email.objects.get(user=user)
    for action in ("resend", "primary", "remove"):
        response = signed_in.get(url(action, email))
        assert response["Location"] == url("manage")
    assert Email.objects.filter(user=user).count() == 1


# --- make primary -----------------------------------------------------------------------------


def test_make_primary_tells_every_verified_address(signed_in, user, mail):
    """NIST N9: every verified address hears about the change, with "this wasn't me"."""
    work = add_verified(user, "alice@work.example")
    home = add_verified(user, "alice@home.example")
    response = signed_in.post(url("primary", work))
    assert response.status_code == 302
    work.refresh_from_db()
    assert work.primary
    assert Email.objects.filter(user=user, primary=True).get() == work
    assert events(user, EventKind.EMAIL_PRIMARY_CHANGED)[0].details == {
        "old": "alice@example.org",
        "new": "alice@work.example",
    }
    for address in ("alice@example.org", work.address, home.address):
        notice = mail.last(address)
        assert notice["Subject"] == "Your primary address on Relatch changed"
        assert SECURITY_FOOTER in mail.text(notice)


@pytest.mark.parametrize(
    ("make_target", "reason"),
    [
        (
            lambda user: Email.objects.create(user=user, address="x@work.example"),
            "Verify this address before making it primary",
        ),
        (lambda user: Email.objects.get(user=user), "already your primary address"),
    ],
    ids=["unverified", "already-primary"],
)
def test_make_primary_refusals(signed_in, user, mail, make_target, reason):
    target = make_target(user)
    response = signed_in.post(url("primary", target))
    assert response.status_code == 400
    assert reason in response.content.decode()
    assert Email.objects.get(user=user, primary=True).address == "alice@example.org"
    assert events(user, EventKind.EMAIL_PRIMARY_CHANGED) == []
    assert mail.messages == []


def test_make_primary_needs_a_recent_password(client, user):
    work = add_verified(user, "alice@work.example")
    sign_in(client, user, reauthenticated=False)
    response = client.post(url("primary", work))
    assert response["Location"].startswith(reverse("signin:reauthenticate"))
    work.refresh_from_db()
    assert not work.primary


# --- remove -----------------------------------------------------------------------------------


def test_the_only_verified_address_cannot_be_removed(signed_in, user, mail):
    Email.objects.create(user=user, address="unverified@work.example")
    response = signed_in.post(url("remove", Email.objects.get(address="alice@example.org")))
    assert response.status_code == 400
    assert "only verified address" in response.content.decode()
    assert Email.objects.filter(user=user).count() == 2
    assert mail.messages == []


def test_removing_an_unverified_address_tells_the_verified_ones(signed_in, user, mail):
    extra = Email.objects.create(user=user, address="typo@work.example")
    response = signed_in.post(url("remove", extra))
    assert response.status_code == 302
    assert not Email.objects.filter(pk=extra.pk).exists()
    assert events(user, EventKind.EMAIL_REMOVED)[0].details["address"] == "typo@work.example"
    assert mail.last("alice@example.org")["Subject"] == (
        "An address was removed from your Relatch account"
    )
    assert mail.to("typo@work.example") == []  # never verified: hears nothing


def test_removing_the_primary_promotes_another_and_tells_the_removed_one(signed_in, user, mail):
    """The removed address is told too: if a thief removed it, its owner must know."""
    work = add_verified(user, "alice@work.example")
    primary = Email.objects.get(address="alice@example.org")
    response = signed_in.post(url("remove", primary))
    assert response.status_code == 302
    work.refresh_from_db()
    assert work.primary
    assert list(Email.objects.filter(user=user)) == [work]
    for address in ("alice@example.org", "alice@work.example"):
        notice = mail.last(address)
        assert notice["Subject"] == "An address was removed from your Relatch account"
        assert "alice@work.example" in mail.text(notice)  # names the new primary
        assert SECURITY_FOOTER in mail.text(notice)


def test_remove_needs_a_recent_password(client, user):
    work = add_verified(user, "alice@work.example")
    sign_in(client, user, reauthenticated=False)
    response = client.post(url("remove", work))
    assert response["Location"].startswith(reverse("signin:reauthenticate"))
    assert Email.objects.filter(pk=work.pk).exists()


def test_remove_sent_twice_does_not_fail(signed_in, user):
    extra = Email.objects.create(user=user, address="typo@work.example")
    assert signed_in.post(url("remove", extra)).status_code == 302
    again = signed_in.post(url("remove", extra))
    assert again.status_code == 400
    assert "not on your account" in again.content.decode()


# --- replace (the typo at sign-up) ------------------------------------------------------------


def test_replace_fixes_a_typo(client, newbie, mail):
    sign_in(client, newbie)
    email = Email.objects.get(user=newbie)
    response = client.post(url("replace", email), {"address": "newbie@example.org"})
    assert response.status_code == 302
    email.refresh_from_db()
    assert (email.address, email.primary, email.verified) == ("newbie@example.org", True, False)
    assert events(newbie, EventKind.EMAIL_REPLACED)[0].details == {
        "old": "newbie@exampel.org",
        "new": "newbie@example.org",
    }
    assert subjects(mail, "newbie@example.org") == ["Verify your address for Relatch"]
    assert mail.to("newbie@exampel.org") == []


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("newbie@exampel.org", "the address you have now"),
        ("NEWBIE@exampel.org", "the address you have now"),
        ("newbie", "Enter a valid email address."),
        ("", "This field is required."),
        ("n" * 250 + "@example.org", "at most 254 characters"),
    ],
)
def test_replace_refusals(client, newbie, mail, address, reason):
    sign_in(client, newbie)
    email = Email.objects.get(user=newbie)
    response = client.post(url("replace", email), {"address": address})
    assert response.status_code == 400
    assert reason in response.content.decode()
    email.refresh_from_db()
    assert email.address == "newbie@exampel.org"
    assert mail.messages == []


def test_replace_is_for_accounts_without_a_verified_address(signed_in, user, mail):
    extra = Email.objects.create(user=user, address="typo@work.example")
    response = signed_in.post(url("replace", extra), {"address": "fixed@work.example"})
    assert response.status_code == 400
    assert "add the new address and remove the old one" in response.content.decode()
    extra.refresh_from_db()
    assert extra.address == "typo@work.example"
    assert mail.messages == []


def test_replace_needs_a_recent_password(client, newbie, mail):
    sign_in(client, newbie, reauthenticated=False)
    email = Email.objects.get(user=newbie)
    response = client.post(url("replace", email), {"address": "newbie@example.org"})
    assert response["Location"].startswith(reverse("signin:reauthenticate"))
    email.refresh_from_db()
    assert email.address == "newbie@exampel.org"


def test_replacing_is_limited_per_account(client, newbie):
    sign_in(client, newbie)
    email = Email.objects.get(user=newbie)
    for n in range(10):
        client.post(url("replace", email), {"address": f"try{n}@example.org"})
    response = client.post(url("replace", email), {"address": "try10@example.org"})
    assert response.status_code == 429
    email.refresh_from_db()
    assert email.address == "try9@example.org"


# --- the page ---------------------------------------------------------------------------------


def test_page_lists_addresses_with_their_state(signed_in, user):
    add_verified(user, "alice@work.example")
    Email.objects.create(user=user, address="alice@new.example")
    page = signed_in.get(url("manage")).content.decode()
    assert page.count("Verified</span>") == 2
    assert page.count("Not verified</span>") == 1
    assert page.count("Primary</span>") == 1
    assert page.count("Make primary") == 1
    assert "Add an address" in page


def test_page_hides_remove_for_the_only_verified_address(signed_in):
    page = signed_in.get(url("manage")).content.decode()
    assert "it cannot be removed" in page
    assert ">Remove<" not in page
