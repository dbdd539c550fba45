""""Can't sign in?" (issue 19): the account's name first, then what the person still has, then
the shortest safe path, each next form filled in. The advice reads the answers only, so the
pages are the same for every name (ASVS 6.3.8, OWASP FP1)."""

import html
import re
from urllib.parse import urlencode

import pytest

from relatch.recovery.models import RecoveryRequest

pytestmark = pytest.mark.django_db

START = "/recovery/request/"
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')
# The ways out of the second step that the advice names (rendered with typographic quotes).
CANT_USE = "“I can't use any of these”"
LOST_MAIL = "“I no longer have access to my email”"


def advice(client, account, *has):
    query = urlencode({"account": account, "asked": "1", "has": list(has)}, doseq=True)
    return client.get(f"{START}?{query}")


def text(response):
    return html.unescape(response.content.decode())


def test_the_first_step_asks_only_for_the_account_and_is_linked_from_sign_in(client):
    page = text(client.get(START))
    assert "<h1>Can't sign in?</h1>" in page
    assert 'name="account"' in page and 'name="has"' not in page
    assert "Enter an email address of the account" in page  # forgot the username: fine
    assert START in client.get("/account/login/").content.decode()


def test_the_second_step_asks_what_they_still_have_for_that_name(client):
    response = client.get(f"{START}?account=alice")
    page = text(response)
    assert response.status_code == 200
    assert "<h1>What do you still have?</h1>" in page and "<strong>alice</strong>" in page
    assert '<input type="hidden" name="account" value="alice">' in page
    assert 'name="has" value="password"' in page and 'name="has" value="repo_push"' in page


@pytest.mark.parametrize(("query", "message"), [
    ("account=", "Enter the account's username or email address."),
    ("account=%20%20", "Enter the account's username or email address."),
    (f"account={'a' * 255}", "at most 254 characters"),
    ("account=alice&asked=1&has=nonsense", "Select a valid choice"),
])
def test_a_missing_or_garbled_answer_is_a_clear_refusal(client, query, message):
    response = client.get(f"{START}?{query}")
    assert response.status_code == 400
    assert message in text(response)


@pytest.mark.parametrize(("account", "has", "heading", "says", "links"), [
    # (a) password and mailbox, the factor lost: sign in, then "I can't use any of these".
    ("alice", ["password", "email"], "Sign in with your password",
     [CANT_USE, "mails a code to the account's address"], ["/account/login/?username=alice"]),
    # the password alone: the request form, or the same way out of the second step.
    ("alice", ["password"], "Ask staff for recovery",
     ["File a recovery request", CANT_USE, "without a second factor on the account, that is all"],
     ["/recovery/request/new/?username=alice&amp;has=password", "/account/login/?username=alice"]),
    # (b) mailbox only: a reset, then the same way out, never back here.
    ("alice", ["email"], "Reset your password",
     [CANT_USE, "you need not come back here"], []),
    ("alice", ["email", "totp"], "Reset your password",
     ["Use your second factor on the second step"], []),
    # (c) the username forgotten: the address does, for signing in too.
    ("alice@example.org", ["password", "email", "totp"], "Sign in with your password",
     ["the sign-in page takes it as well as your username"],
     ["/account/login/?username=alice%40example.org"]),
    # (d) password and factor, no mailbox: the mail step's "I no longer have access".
    ("alice", ["password", "totp"], "Sign in with your password", [LOST_MAIL], []),
    # (e) nothing that signs in: the request form, filled in.
    ("alice", ["repo_push", "api_token"], "Ask staff for recovery", ["File a recovery request"],
     ["/recovery/request/new/?username=alice&amp;has=repo_push&amp;has=api_token"]),
    ("alice", [], "Ask staff for recovery", ["File a recovery request"],
     ["/recovery/request/new/?username=alice"]),
])
def test_each_answer_gets_its_path(client, account, has, heading, says, links):
    response = advice(client, account, *has)
    assert response.status_code == 200
    page = text(response)
    assert f"<h2>{heading}</h2>" in page
    for words in says:
        assert words in " ".join(page.split())
    raw = response.content.decode()
    for link in links:
        assert f'href="{link}"' in raw


@pytest.mark.parametrize(("has", "absent"), [
    (["password", "email", "totp"], [CANT_USE, LOST_MAIL]),
    (["password", "email"], [LOST_MAIL]),
    (["email"], ["come back here and ask"]),
    (["repo_push"], [CANT_USE, "/account/login/?"]),
])
def test_the_advice_names_no_way_out_that_the_answers_do_not_need(client, has, absent):
    page = " ".join(text(advice(client, "alice", *has)).split())
    for words in absent:
        assert words not in page


@pytest.mark.parametrize("account", ["alice", "alice@example.org"])
def test_the_reset_form_is_filled_in_and_mails_the_link(client, user, mail, account):
    page = advice(client, account, "email").content.decode()
    assert 'action="/account/reset/"' in page
    assert f'name="identifier" id="id_reset_identifier" value="{account}"' in page
    response = client.post("/account/reset/", {"identifier": account})
    assert response.status_code == 200
    assert "/account/reset/" in mail.text(mail.last("alice@example.org"))


def test_the_sign_in_page_is_filled_in_and_the_password_has_the_keyboard(client):
    page = client.get("/account/login/?username=alice%40example.org").content.decode()
    identifier = re.search(r'<input[^>]*name="identifier"[^>]*>', page).group(0)
    password = re.search(r'<input[^>]*name="password"[^>]*>', page).group(0)
    assert 'value="alice@example.org"' in identifier and "autofocus" not in identifier
    assert "autofocus" in password
    plain = client.get("/account/login/").content.decode()
    assert "autofocus" in re.search(r'<input[^>]*name="identifier"[^>]*>', plain).group(0)


def test_the_request_form_is_filled_in_with_the_name_and_the_answers(client):
    page = client.get("/recovery/request/new/?username=alice%40example.org&has=repo_push"
                      "&has=api_token").content.decode()
    assert re.search(r'name="username"[^>]*value="alice@example.org"', page)
    assert re.search(r'value="repo_push"[^>]*checked', page)
    assert re.search(r'value="api_token"[^>]*checked', page)
    assert not re.search(r'value="password"[^>]*checked', page)


@pytest.mark.parametrize(("known", "unknown"), [
    ("alice", "nobody-here"),
    ("alice@example.org", "nobody@example.org"),
])
@pytest.mark.parametrize("has", [[], ["password"], ["email"], ["password", "email", "totp"],
                                 ["password", "totp"], ["repo_push"]])
def test_an_existing_and_an_unknown_name_get_the_same_pages(client, user, known, unknown, has):
    """ASVS 6.3.8, OWASP FP1: apart from the name echoed back, byte for byte the same, at
    every step; nothing is made. (An address and a username differ in one sentence, "the
    sign-in page takes it": that reads what was typed, not the account.)"""
    steps = [
        lambda name: client.get(f"{START}?{urlencode({'account': name})}"),
        lambda name: advice(client, name, *has),
    ]
    for step in steps:
        pages = []
        for name in (known, unknown):
            response = step(name)
            assert response.status_code == 200
            page = CSRF.sub("", response.content.decode())
            pages.append(page.replace(urlencode({"u": name})[2:], "NAME").replace(name, "NAME"))
        assert pages[0] == pages[1]
    assert not RecoveryRequest.objects.exists()
