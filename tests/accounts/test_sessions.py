"""Sessions on the devices page: listed, ended one by one or all but this one (issue 2 §7,
ASVS 7.5.2). Here browsers keep no device cookie, so each session is an entry of its own
(test_devices_list.py has a browser and its sessions as one)."""

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from relatch.accounts.models import User, UserSession
from relatch.accounts.sessions.services import session_digest
from relatch.accounts.sessions.useragents import describe_user_agent
from relatch.audit.models import EventKind, SecurityEvent
from tests.conftest import sign_in

pytestmark = pytest.mark.django_db

FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"
CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/138.0.0.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.5 Mobile/15E148 Safari/604.1"
)
LIST = reverse("sessions:list")
CONFIRM_THEN_LIST = f"{reverse('signin:reauthenticate')}?next=%2Faccount%2Fsessions%2F"


def session_of(client: Client) -> UserSession:
    return UserSession.objects.get(session_digest=session_digest(client.session.session_key))


def browser(make_client: Any, user: User, agent: str, *, reauthenticated: bool = True) -> Any:
    """A browser signed in as ``user``. ``sign_in`` skips the login form, which is what records
    the user agent, so the row gets it here as ``start_session`` would."""
    client = sign_in(make_client(agent), user, reauthenticated=reauthenticated)
    UserSession.objects.filter(pk=session_of(client).pk).update(user_agent=agent)
    return client


def end_url(row: UserSession) -> str:
    return reverse("sessions:end", args=[row.pk])


def events(user: User, kind: EventKind) -> list[SecurityEvent]:
    return list(SecurityEvent.objects.filter(user=user, kind=kind))


@pytest.mark.parametrize(
    ("agent", "browser_name", "system"),
    [
        (FIREFOX_LINUX, "Firefox 140", "Linux"),
        (CHROME_WINDOWS, "Chrome 138", "Windows 10"),
        (SAFARI_IPHONE, "Mobile Safari 18", "iOS 18"),
        ("", "Unknown browser", "Unknown system"),
        ("<script>not a browser</script>", "Unknown browser", "Unknown system"),
    ],
)
def test_user_agents_are_named_for_people(agent, browser_name, system):
    described = describe_user_agent(agent)
    assert (described.browser, described.system) == (browser_name, system)


def test_page_lists_every_session_newest_activity_first_and_marks_this_one(make_client, user):
    """ASVS 7.5.2: the user sees each signed-in browser with its browser, system and network."""
    laptop = browser(make_client, user, FIREFOX_LINUX)
    desktop = browser(make_client, user, CHROME_WINDOWS)
    UserSession.objects.filter(pk=session_of(desktop).pk).update(
        last_seen=timezone.now() - timedelta(hours=2), ip_address="203.0.113.9"
    )

    response = laptop.get(LIST)

    assert response.status_code == 200
    rows = response.context["devices"]
    assert [(r.browser, r.system, r.is_current, r.trusted) for r in rows] == [
        ("Firefox 140", "Linux", True, False),
        ("Chrome 138", "Windows 10", False, False),
    ]
    page = response.content.decode()
    assert page.count("This device") == 1
    assert page.index("Firefox on Linux") < page.index("This device") < page.index("Chrome on")
    assert "203.0.113.0/24" in page
    assert "2 hours ago" in page
    assert end_url(session_of(desktop)) in page
    assert end_url(session_of(laptop)) not in page  # this one is ended by signing out
    assert "sign out to end it" in page
    assert "End all other devices" in page


def test_a_lone_session_offers_nothing_to_end(signed_in):
    page = signed_in.get(LIST).content.decode()
    assert "This device" in page
    assert "End all other devices" not in page
    assert "Only this browser is signed in" in page


def test_ending_another_session_signs_that_browser_out(make_client, user):
    """ASVS 7.5.2: an ended session is signed out on its next request; the event is recorded."""
    laptop = browser(make_client, user, FIREFOX_LINUX)
    desktop = browser(make_client, user, CHROME_WINDOWS)
    target = session_of(desktop)

    response = laptop.post(end_url(target), follow=True)

    assert response.redirect_chain == [(LIST, 302)]
    assert "Session ended" in response.content.decode()
    assert not UserSession.objects.filter(pk=target.pk).exists()
    [event] = events(user, EventKind.SESSION_ENDED)
    assert event.details["user_agent"] == CHROME_WINDOWS
    assert event.user_agent == FIREFOX_LINUX  # done from the laptop
    gone = desktop.get(reverse("account:overview"))
    assert gone.status_code == 302
    assert gone["Location"].startswith(reverse("signin:login"))
    assert laptop.get(LIST).status_code == 200  # the laptop itself stays signed in


def test_ending_the_same_session_twice_is_refused_clearly(make_client, user):
    laptop = browser(make_client, user, FIREFOX_LINUX)
    target = session_of(browser(make_client, user, CHROME_WINDOWS))
    laptop.post(end_url(target))

    again = laptop.post(end_url(target))

    assert again.status_code == 404
    assert "may have ended already" in again.content.decode()
    assert len(events(user, EventKind.SESSION_ENDED)) == 1


def test_end_all_other_sessions(make_client, user):
    laptop = browser(make_client, user, FIREFOX_LINUX)
    others = [browser(make_client, user, CHROME_WINDOWS), browser(make_client, user, SAFARI_IPHONE)]
    mine = session_of(laptop)

    response = laptop.post(reverse("sessions:end_others"), follow=True)

    assert "Ended 2 other sessions" in response.content.decode()
    assert list(UserSession.objects.filter(user=user)) == [mine]
    [event] = events(user, EventKind.OTHER_SESSIONS_ENDED)
    assert event.details == {"count": 2}
    for other in others:
        assert other.get(LIST)["Location"].startswith(reverse("signin:login"))
    # A second submit finds nothing to end and records nothing more.
    again = laptop.post(reverse("sessions:end_others"), follow=True)
    assert "no other sessions to end" in again.content.decode()
    assert len(events(user, EventKind.OTHER_SESSIONS_ENDED)) == 1


def test_end_all_others_keeps_other_accounts_sessions(make_client, user, make_user):
    laptop = browser(make_client, user, FIREFOX_LINUX)
    bob = make_user(username="bob")
    bobs = browser(make_client, bob, CHROME_WINDOWS)
    laptop.post(reverse("sessions:end_others"))
    assert UserSession.objects.filter(user=bob).count() == 1
    assert bobs.get(LIST).status_code == 200


def test_the_current_session_cannot_be_ended_from_the_list(make_client, user):
    """Ending the session in use is signing out, which has its own button."""
    laptop = browser(make_client, user, FIREFOX_LINUX)
    mine = session_of(laptop)

    response = laptop.post(end_url(mine), follow=True)

    assert response.redirect_chain == [(LIST, 302)]
    assert "Sign out to end it" in response.content.decode()
    assert UserSession.objects.filter(pk=mine.pk).exists()
    assert events(user, EventKind.SESSION_ENDED) == []


@pytest.mark.parametrize("whose", ["another account's", "a missing"])
def test_a_session_that_is_not_yours_cannot_be_ended(make_client, user, make_user, whose):
    laptop = browser(make_client, user, FIREFOX_LINUX)
    bob = make_user(username="bob")
    bobs = browser(make_client, bob, CHROME_WINDOWS)
    target_id = session_of(bobs).pk if whose == "another account's" else 999_999

    response = laptop.post(reverse("sessions:end", args=[target_id]))

    assert response.status_code == 404
    assert "Session not found" in response.content.decode()
    assert UserSession.objects.count() == 2
    assert not SecurityEvent.objects.filter(kind=EventKind.SESSION_ENDED).exists()
    assert bobs.get(LIST).status_code == 200  # Bob is still signed in


@pytest.mark.parametrize("name", ["sessions:end", "sessions:end_others"])
def test_get_never_ends_a_session(make_client, user, name):
    laptop = browser(make_client, user, FIREFOX_LINUX)
    other = session_of(browser(make_client, user, CHROME_WINDOWS))
    url = reverse(name, args=[other.pk]) if name == "sessions:end" else reverse(name)

    assert laptop.get(url).status_code == 405
    assert UserSession.objects.filter(user=user).count() == 2
    assert not SecurityEvent.objects.filter(
        kind__in=[EventKind.SESSION_ENDED, EventKind.OTHER_SESSIONS_ENDED]
    ).exists()


def test_the_list_needs_a_recent_password_confirmation(make_client, user):
    """ASVS 7.5.2: sessions are viewed after reauthenticating."""
    stale = browser(make_client, user, FIREFOX_LINUX, reauthenticated=False)
    response = stale.get(LIST)
    assert response.status_code == 302
    assert response["Location"] == CONFIRM_THEN_LIST


@pytest.mark.parametrize("name", ["sessions:end", "sessions:end_others"])
def test_a_stale_session_ends_nothing_and_returns_to_the_list_after_confirming(
    make_client, user, name
):
    stale = browser(make_client, user, FIREFOX_LINUX, reauthenticated=False)
    other = session_of(browser(make_client, user, CHROME_WINDOWS))
    url = reverse(name, args=[other.pk]) if name == "sessions:end" else reverse(name)

    response = stale.post(url)

    assert response.status_code == 302
    assert response["Location"] == CONFIRM_THEN_LIST
    assert UserSession.objects.filter(user=user).count() == 2
    assert not SecurityEvent.objects.filter(
        kind__in=[EventKind.SESSION_ENDED, EventKind.OTHER_SESSIONS_ENDED]
    ).exists()


@pytest.mark.parametrize(
    ("method", "name"), [("get", "sessions:list"), ("post", "sessions:end_others")]
)
def test_anonymous_visitors_are_sent_to_sign_in(client, method, name):
    response = getattr(client, method)(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("signin:login"))


def test_ending_a_session_needs_the_csrf_token(user):
    laptop = sign_in(Client(enforce_csrf_checks=True), user)
    other = session_of(sign_in(Client(), user))

    response = laptop.post(end_url(other))

    assert response.status_code == 403
    assert UserSession.objects.filter(pk=other.pk).exists()
