"""Who may create an account (RELATCH_SIGNUP: open, closed, domains), and operator-made
accounts (``relatch createuser``). Every refusal makes no user row and sends no mail."""

from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import TestCase
from django.urls import reverse

from relatch.accounts.emails.services import EmailChangeError
from relatch.accounts.models import Email, User
from relatch.accounts.registration import policy
from relatch.accounts.registration.services import register_account
from relatch.audit.models import EventKind, SecurityEvent
from tests.accounts.test_registration import form, register_url
from tests.conftest import PASSWORD, run_pending_tasks
from tests.test_settings import computed, settings_for

pytestmark = pytest.mark.django_db

DOMAINS_REFUSAL = "Accounts on this index are for addresses at example.org only."


@pytest.fixture
def closed(settings: Any) -> None:
    settings.SIGNUP, settings.SIGNUP_DOMAINS = "closed", ()


@pytest.fixture
def domains(settings: Any) -> None:
    settings.SIGNUP, settings.SIGNUP_DOMAINS = "domains", ("example.org",)


def assert_nothing_made(mail: Any) -> None:
    assert not User.objects.exists()
    assert not Email.objects.exists()
    assert not SecurityEvent.objects.filter(kind=EventKind.ACCOUNT_CREATED).exists()
    assert mail.messages == []


# --- settings: checked at start ----------------------------------------------------------------


@pytest.mark.own_database
def test_the_default_follows_read_access(tmp_path):
    assert computed(tmp_path, {}, "SIGNUP")["SIGNUP"] == "open"
    private = computed(tmp_path, {"RELATCH_READ_ACCESS": "authenticated"},
                       "SIGNUP", "SIGNUP_DOMAINS")
    assert private == {"SIGNUP": "closed", "SIGNUP_DOMAINS": []}
    both = {"RELATCH_READ_ACCESS": "authenticated", "RELATCH_SIGNUP": "domains",
            "RELATCH_SIGNUP_DOMAINS": " Example.ORG, team.example.net. "}
    assert computed(tmp_path, both, "SIGNUP_DOMAINS")["SIGNUP_DOMAINS"] == [
        "example.org", "team.example.net"]


@pytest.mark.own_database
@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RELATCH_SIGNUP": "invite"}, "RELATCH_SIGNUP must be open, closed or domains"),
        ({"RELATCH_SIGNUP": "domains"}, "RELATCH_SIGNUP_DOMAINS (comma-separated"),
        ({"RELATCH_SIGNUP": "closed", "RELATCH_SIGNUP_DOMAINS": "example.org"},
         "only allowed with it"),
        ({"RELATCH_SIGNUP": "domains", "RELATCH_SIGNUP_DOMAINS": "*.example.org"},
         "not an email domain: *.example.org"),
        ({"RELATCH_SIGNUP": "domains", "RELATCH_SIGNUP_DOMAINS": "me@example.org"},
         "not an email domain: me@example.org"),
    ],
)
def test_a_bad_signup_setting_stops_the_start(tmp_path, env, message):
    done = settings_for(tmp_path, env, "SIGNUP")
    assert done.returncode != 0
    assert message in done.stderr


# --- the pages ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "shows_form", "text"),
    [
        ("open", True, "Create the account"),
        ("closed", False, "Accounts on this index are made by its operators."),
        ("domains", True, "Accounts on this index are for addresses at example.org."),
    ],
)
def test_each_mode_has_its_page_and_links(client, settings, mode, shows_form, text):
    settings.SIGNUP = mode
    settings.SIGNUP_DOMAINS = ("example.org",) if mode == "domains" else ()
    page = client.get(register_url())
    assert page.status_code == 200
    assert text in page.content.decode()
    assert ('name="password"' in page.content.decode()) is shows_form
    link = f'href="{register_url()}"'
    for other in (reverse("signin:login"), reverse("home")):
        assert (link in client.get(other).content.decode()) is shows_form, other


# --- closed ------------------------------------------------------------------------------------


def test_a_stranger_posting_the_form_in_closed_mode_makes_nothing(client, closed, mail):
    response = client.post(register_url(), form())
    assert response.status_code == 403
    assert "made by its operators" in response.content.decode()
    assert_nothing_made(mail)
    assert "_auth_user_id" not in client.session


def test_the_service_refuses_too_when_closed(closed, mail):
    """Whatever calls it (a future API, a script), the service obeys the mode."""
    with pytest.raises(policy.SignupRefusedError):
        register_account(request=None, username="bob", name="", email="bob@example.org",
                         password=PASSWORD)
    assert_nothing_made(mail)


# --- domains -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "mallory@evil.com",
        "mallory@example.org.evil.com",  # a suffix match would take it
        "mallory@evil-example.org",  # an endswith match would take it
        "mallory@sub.example.org",  # exact match: subdomains are not the domain
        "mallory@examp1e.org",
        '"mallory@example.org"@evil.com',  # a quoted local part holding the domain
        "mallory@example.org@evil.com",  # not an address at all
        "mallory@évil.com",
    ],
)
def test_domains_mode_refuses_other_domains(client, domains, mail, address):
    response = client.post(register_url(), form(email=address))
    assert response.status_code == 400
    body = response.content.decode()
    assert DOMAINS_REFUSAL in body or "Enter a valid email address." in body
    assert_nothing_made(mail)


def test_domains_mode_names_the_domain_in_the_refusal(client, domains, mail):
    response = client.post(register_url(), form(email="mallory@example.org.evil.com"))
    assert DOMAINS_REFUSAL in response.content.decode()


@pytest.mark.parametrize("address", ["bob@example.org", "Bob@EXAMPLE.ORG"])
def test_domains_mode_takes_the_domain_and_mails_a_verification_link(
        client, domains, mail, address):
    response = client.post(register_url(), form(email=address))
    assert response.status_code == 302
    email = Email.objects.get(user__username="bob")
    assert email.address.lower() == "bob@example.org"
    assert not email.verified
    assert mail.last(email.address)


def test_an_idn_domain_matches_in_either_spelling(client, settings, mail):
    settings.SIGNUP, settings.SIGNUP_DOMAINS = "domains", ("bücher.example",)
    assert policy.address_allowed("a@xn--bcher-kva.example")
    assert policy.address_allowed("a@BÜCHER.example")
    assert not policy.address_allowed("a@xn--bcher-kva.example.evil.com")
    response = client.post(register_url(), form(email="bob@xn--bcher-kva.example"))
    assert response.status_code == 302


def test_an_unverified_registrant_cannot_swap_in_an_outside_address(client, domains, mail):
    """The loophole: sign up as someone@example.org, then replace that unverified address
    with one's own and verify it. The domain rule is on the address that gets verified."""
    client.post(register_url(), form(email="ceo@example.org"))
    email = Email.objects.get(user__username="bob")
    response = client.post(reverse("emails:replace", args=[email.pk]),
                           {"address": "mallory@evil.com"})
    assert response.status_code == 400
    assert DOMAINS_REFUSAL in response.content.decode()
    email.refresh_from_db()
    assert email.address == "ceo@example.org"
    assert mail.to("mallory@evil.com") == []
    # Replacing with another address at the domain (a typo fixed) still works.
    fixed = client.post(reverse("emails:replace", args=[email.pk]),
                        {"address": "bob@example.org"})
    assert fixed.status_code == 302


def test_the_replace_service_refuses_an_outside_address(domains, make_user):
    user = make_user(email="bob@example.org", verified=False)
    from relatch.accounts.emails.services import replace_unverified_email

    with pytest.raises(EmailChangeError, match="for addresses at example.org only"):
        replace_unverified_email(request=None, user=user, email_id=user.emails.get().pk,
                                 new_address="bob@example.org.evil.com")


def test_an_unverified_registrant_reads_nothing_when_reads_are_private(
        client, domains, settings, mail):
    """Registering as someone@example.org without its mailbox must not open the index."""
    settings.READ_ACCESS = "authenticated"
    client.post(register_url(), form(email="ceo@example.org"))
    assert "_auth_user_id" in client.session  # signed in, but only to verify the address
    assert client.get("/simple/").status_code == 401


# --- createuser --------------------------------------------------------------------------------


def run_createuser(*args: str) -> str:
    out = StringIO()
    with TestCase.captureOnCommitCallbacks(execute=True):
        call_command("createuser", *args, stdout=out)
    run_pending_tasks()
    return out.getvalue()


def test_createuser_makes_a_verified_account_and_mails_a_set_password_link(
        client, closed, mail):
    out = run_createuser("carol", "--email", "Carol@Example.ORG", "--name", "Carol")
    assert "Created account 'carol'" in out
    user = User.objects.get(username="carol")
    assert not user.has_usable_password() and not user.is_staff
    email = user.emails.get()
    assert (email.address, email.verified, email.primary) == ("Carol@example.org", True, True)
    assert SecurityEvent.objects.get(user=user, kind=EventKind.ACCOUNT_CREATED).details == {
        "by": "operator"}
    message = mail.last("Carol@example.org")
    assert "made the Relatch account carol for you" in mail.text(message)
    # The link is the password reset flow's: it leads to choosing a password, once.
    link = mail.link_to(message, "/account/reset/")
    page = client.get(link)
    assert page.status_code == 302
    new_password = "correct horse battery staple 42"
    done = client.post(page["Location"], {"new_password1": new_password,
                                          "new_password2": new_password})
    assert done.status_code == 302 and done["Location"] == reverse("signin:login")
    user.refresh_from_db()
    assert user.check_password(new_password)
    again = client.get(link)
    assert again.status_code != 302  # used once: the reset page's "invalid link" answer
    assert "accounts/passwords/reset_invalid.html" in [t.name for t in again.templates]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("alice", "--email", "new@example.org"), "The username 'alice' is taken."),
        (("carol", "--email", "alice@example.org"), "already verified on another account"),
        (("carol", "--email", "not-an-address"), "Enter a valid email address."),
        (("carol!", "--email", "carol@example.org"), "Username 'carol!'"),
    ],
)
def test_createuser_refusals_make_nothing(user, mail, args, message):
    with pytest.raises(CommandError, match=message):
        run_createuser(*args)
    assert list(User.objects.values_list("username", flat=True)) == ["alice"]
    assert mail.messages == []
