"""Trusted devices on the devices page: listed, ended one by one or all but this browser
(issue 3 §5, issue 19). Ending a device signs out its sessions and forgets it: it is a new
device again at its next sign-in."""

from datetime import timedelta
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from relatch.accounts.devices import cookie_name, is_known_device, remember_device
from relatch.accounts.models import KnownDevice, User, UserSession
from relatch.audit.models import EventKind, SecurityEvent
from tests.conftest import PASSWORD, sign_in

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
END_OTHERS = reverse("sessions:end_other_devices")
CONFIRM_THEN_LIST = f"{reverse('signin:reauthenticate')}?next=%2Faccount%2Fsessions%2F"


def end_url(device: KnownDevice) -> str:
    return reverse("sessions:end_device", args=[device.pk])


def request_from(client: Client) -> HttpRequest:
    """A request carrying ``client``'s cookies, as that browser's next request would."""
    request = RequestFactory().get("/", HTTP_USER_AGENT=client.defaults.get("HTTP_USER_AGENT", ""))
    request.COOKIES = {name: morsel.value for name, morsel in client.cookies.items()}
    return request


def trust(client: Client, user: User) -> KnownDevice:
    """Make ``client``'s browser a known device of ``user`` the way a completed sign-in does:
    ``remember_device`` writes the row and the signed cookie, which the browser then keeps."""
    response = HttpResponse()
    device = remember_device(request=request_from(client), response=response, user=user)
    client.cookies[cookie_name()] = response.cookies[cookie_name()].value
    return device


def browser(make_client: Any, user: User, agent: str, *, reauthenticated: bool = True) -> Any:
    """A browser signed in as ``user`` and trusted by it, which then loads a page (its session
    is tied to its device at that request, as after a real sign-in's)."""
    client = sign_in(make_client(agent), user, reauthenticated=reauthenticated)
    trust(client, user)
    client.get(reverse("account:overview"))
    return client


def signed_out(client: Client) -> bool:
    response = client.get(reverse("account:overview"))
    return response.status_code == 302 and response["Location"].startswith(reverse("signin:login"))


def forgotten_events(user: User) -> list[SecurityEvent]:
    return list(SecurityEvent.objects.filter(user=user, kind=EventKind.DEVICE_FORGOTTEN))


def ended_events(user: User, kind: EventKind = EventKind.SESSION_ENDED) -> list[SecurityEvent]:
    return list(SecurityEvent.objects.filter(user=user, kind=kind))




def test_signing_in_through_the_form_lists_this_browser_as_trusted(make_client, user):
    laptop = make_client(FIREFOX_LINUX)
    signed = laptop.post(reverse("signin:login"), {"identifier": "alice", "password": PASSWORD})
    assert signed.status_code == 302

    response = laptop.get(LIST)

    [row] = response.context["devices"]
    assert (row.browser, row.system, row.is_current, row.trusted) == (
        "Firefox 140", "Linux", True, True
    )
    assert row.sessions == 1  # its session is part of the entry, not a second one
    page = response.content.decode()
    assert page.count("This device") == 1
    assert end_url(KnownDevice.objects.get(user=user)) in page
    assert "Sign out and forget this device" in page
    assert "End all other devices" not in page  # nothing else to end


def test_page_lists_every_trusted_device_and_marks_this_browser(make_client, user, make_user):
    laptop = browser(make_client, user, FIREFOX_LINUX)
    desktop = browser(make_client, user, CHROME_WINDOWS)
    chrome = trust(desktop, user)
    KnownDevice.objects.filter(pk=chrome.pk).update(
        last_seen=timezone.now() - timedelta(days=3), ip_address="203.0.113.9", confirmed=True
    )
    UserSession.objects.filter(device_digest=chrome.device_digest).update(
        last_seen=timezone.now() - timedelta(days=4)
    )
    browser(make_client, make_user(username="bob"), SAFARI_IPHONE)  # Bob's: not listed

    response = laptop.get(LIST)

    rows = response.context["devices"]
    assert [(r.name, r.is_current, r.confirmed, r.sessions) for r in rows] == [
        ("Firefox on Linux", True, False, 1),
        ("Chrome on Windows", False, True, 1),
    ]
    page = response.content.decode()
    assert page.count("This device") == 1
    firefox, chrome = page.index("Firefox on Linux"), page.index("Chrome on Windows")
    assert firefox < page.index("This device") < chrome
    assert "203.0.113.0/24" in page
    assert "confirmed by email or recovery" in page
    assert "Mobile Safari" not in page
    for device in KnownDevice.objects.filter(user=user):
        assert end_url(device) in page
    assert "End all other devices" in page


def test_a_browser_without_the_device_cookie_is_its_own_entry(signed_in, make_client, user):
    browser(make_client, user, CHROME_WINDOWS)

    rows = signed_in.get(LIST).context["devices"]

    assert [(r.trusted, r.is_current) for r in rows] == [(False, True), (True, False)]


def test_ending_a_device_signs_it_out_and_makes_it_new_at_its_next_signin(make_client, user):
    """Issue 3 §5: a device is revocable; ended, it is signed out and its next sign-in counts as
    a new device's."""
    laptop = browser(make_client, user, FIREFOX_LINUX)
    desktop = browser(make_client, user, CHROME_WINDOWS)
    target = KnownDevice.objects.get(user=user, user_agent=CHROME_WINDOWS)
    assert is_known_device(request=request_from(desktop), user=user)

    response = laptop.post(end_url(target), follow=True)

    assert response.redirect_chain == [(LIST, 302)]
    assert "Device ended: forgotten and signed out" in response.content.decode()
    assert not KnownDevice.objects.filter(pk=target.pk).exists()
    assert UserSession.objects.filter(user=user).count() == 1
    [forgotten] = forgotten_events(user)
    assert forgotten.details["user_agent"] == CHROME_WINDOWS
    assert forgotten.details["this_browser"] is False
    assert forgotten.details["sessions_ended"] == 1
    assert forgotten.user_agent == FIREFOX_LINUX  # done from the laptop
    [ended] = ended_events(user)
    assert ended.details["count"] == 1 and ended.details["with_device"] is True
    assert signed_out(desktop)
    assert not is_known_device(request=request_from(desktop), user=user)
    assert is_known_device(request=request_from(laptop), user=user)
    # The desktop signs in again: the sign-in is recorded as one from a new device.
    desktop.post(reverse("signin:login"), {"identifier": "alice", "password": PASSWORD})
    signin = SecurityEvent.objects.filter(user=user, kind=EventKind.SIGNIN_SUCCEEDED).first()
    assert signin is not None and signin.details["new_device"] is True


def test_ending_this_device_signs_this_browser_out(make_client, user):
    laptop = browser(make_client, user, FIREFOX_LINUX)
    mine = KnownDevice.objects.get(user=user)

    response = laptop.post(end_url(mine), follow=True)

    assert response.redirect_chain == [(reverse("signin:login"), 302)]
    assert "this device is forgotten" in response.content.decode()
    assert not KnownDevice.objects.filter(user=user).exists()
    assert not UserSession.objects.filter(user=user).exists()
    [event] = forgotten_events(user)
    assert event.details["this_browser"] is True
    assert signed_out(laptop)
    assert not is_known_device(request=request_from(laptop), user=user)


def test_ending_the_same_device_twice_is_refused_clearly(make_client, user):
    laptop = browser(make_client, user, FIREFOX_LINUX)
    target = trust(browser(make_client, user, CHROME_WINDOWS), user)
    laptop.post(end_url(target))

    again = laptop.post(end_url(target))

    assert again.status_code == 404
    assert "may have been ended already" in again.content.decode()
    assert len(forgotten_events(user)) == 1
    assert len(ended_events(user)) == 1


def test_end_all_other_devices_keeps_this_browser(make_client, user, make_user):
    laptop = browser(make_client, user, FIREFOX_LINUX)
    others = [browser(make_client, user, CHROME_WINDOWS), browser(make_client, user, SAFARI_IPHONE)]
    cookieless = sign_in(make_client(CHROME_WINDOWS), user)
    bob = make_user(username="bob")
    bobs = browser(make_client, bob, CHROME_WINDOWS)
    mine = KnownDevice.objects.get(user=user, user_agent=FIREFOX_LINUX)

    response = laptop.post(END_OTHERS, follow=True)

    assert "3 sessions signed out, 2 devices forgotten" in response.content.decode()
    assert list(KnownDevice.objects.filter(user=user)) == [mine]
    assert UserSession.objects.filter(user=user).count() == 1
    assert KnownDevice.objects.filter(user=bob).count() == 1
    assert is_known_device(request=request_from(bobs), user=bob)
    assert not signed_out(bobs)
    for other in [*others, cookieless]:
        assert signed_out(other)
        assert not is_known_device(request=request_from(other), user=user)
    [forgotten] = forgotten_events(user)
    assert forgotten.details == {"count": 2, "all_others": True}
    [ended] = ended_events(user, EventKind.OTHER_SESSIONS_ENDED)
    assert ended.details == {"count": 3}
    # A second submit finds nothing to end and records nothing more.
    again = laptop.post(END_OTHERS, follow=True)
    assert "no other devices to end" in again.content.decode()
    assert len(forgotten_events(user)) == 1
    assert len(ended_events(user, EventKind.OTHER_SESSIONS_ENDED)) == 1


@pytest.mark.parametrize("name", ["sessions:end_device", "sessions:forget_device"])
@pytest.mark.parametrize("whose", ["another account's", "a missing"])
def test_a_device_that_is_not_yours_cannot_be_ended(make_client, user, make_user, whose, name):
    laptop = browser(make_client, user, FIREFOX_LINUX)
    bob = make_user(username="bob")
    bobs = browser(make_client, bob, CHROME_WINDOWS)
    target_id = KnownDevice.objects.get(user=bob).pk if whose == "another account's" else 999_999

    response = laptop.post(reverse(name, args=[target_id]))

    assert response.status_code == 404
    assert "Device not found" in response.content.decode()
    assert KnownDevice.objects.count() == 2
    assert UserSession.objects.count() == 2
    assert is_known_device(request=request_from(bobs), user=bob)
    assert not signed_out(bobs)
    assert not SecurityEvent.objects.filter(
        kind__in=[EventKind.DEVICE_FORGOTTEN, EventKind.SESSION_ENDED]
    ).exists()


def test_the_old_forget_urls_end_devices(make_client, user):
    """Before issue 19 the trusted-devices table forgot devices; a page still open from then
    posts to those URLs, which end the device as the list does now."""
    laptop = browser(make_client, user, FIREFOX_LINUX)
    desktop = browser(make_client, user, CHROME_WINDOWS)
    phone = browser(make_client, user, SAFARI_IPHONE)
    target = KnownDevice.objects.get(user=user, user_agent=CHROME_WINDOWS)

    assert laptop.post(reverse("sessions:forget_device", args=[target.pk]))["Location"] == LIST
    assert signed_out(desktop) and not signed_out(phone)
    assert laptop.post(reverse("sessions:forget_other_devices"))["Location"] == LIST
    assert signed_out(phone)
    assert KnownDevice.objects.filter(user=user).count() == 1


@pytest.mark.parametrize(
    "name",
    ["sessions:end_device", "sessions:end_other_devices", "sessions:forget_device",
     "sessions:forget_other_devices"],
)
def test_a_stale_session_ends_nothing_and_returns_to_the_list(make_client, user, name):
    """ASVS 7.5.1: the password is confirmed again before a device is ended."""
    stale = browser(make_client, user, FIREFOX_LINUX, reauthenticated=False)
    other = trust(browser(make_client, user, CHROME_WINDOWS), user)
    one = name in ("sessions:end_device", "sessions:forget_device")
    url = reverse(name, args=[other.pk]) if one else reverse(name)

    response = stale.post(url)

    assert response.status_code == 302
    assert response["Location"] == CONFIRM_THEN_LIST
    assert KnownDevice.objects.filter(user=user).count() == 2
    assert UserSession.objects.filter(user=user).count() == 2
    assert forgotten_events(user) == []


@pytest.mark.parametrize("name", ["sessions:end_device", "sessions:end_other_devices"])
def test_get_never_ends_a_device(make_client, user, name):
    laptop = browser(make_client, user, FIREFOX_LINUX)
    other = trust(browser(make_client, user, CHROME_WINDOWS), user)
    url = reverse(name, args=[other.pk]) if name == "sessions:end_device" else reverse(name)

    assert laptop.get(url).status_code == 405
    assert KnownDevice.objects.filter(user=user).count() == 2
    assert forgotten_events(user) == []


def test_ending_needs_the_csrf_token(user):
    laptop = sign_in(Client(enforce_csrf_checks=True), user)
    other = trust(sign_in(Client(), user), user)

    for url in [end_url(other), END_OTHERS]:
        assert laptop.post(url).status_code == 403
    assert KnownDevice.objects.filter(pk=other.pk).exists()
    assert forgotten_events(user) == []


@pytest.mark.parametrize("name", ["sessions:end_device", "sessions:end_other_devices"])
def test_anonymous_visitors_are_sent_to_sign_in(client, user, name):
    device = KnownDevice.objects.create(user=user, device_digest="0" * 64)
    url = reverse(name, args=[device.pk]) if name == "sessions:end_device" else reverse(name)
    response = client.post(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("signin:login"))
    assert KnownDevice.objects.filter(pk=device.pk).exists()
