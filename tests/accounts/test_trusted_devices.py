"""Trusted devices on the sessions page: listed, forgotten one by one or all but this browser
(issue 3 §5). A forgotten device is a new device again at its next sign-in."""

from datetime import timedelta
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from relatch.accounts.devices import cookie_name, is_known_device, remember_device
from relatch.accounts.models import KnownDevice, User
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
FORGET_OTHERS = reverse("sessions:forget_other_devices")
CONFIRM_THEN_LIST = f"{reverse('signin:reauthenticate')}?next=%2Faccount%2Fsessions%2F"


def forget_url(device: KnownDevice) -> str:
    return reverse("sessions:forget_device", args=[device.pk])


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
    """A browser signed in as ``user`` and trusted by it."""
    client = sign_in(make_client(agent), user, reauthenticated=reauthenticated)
    trust(client, user)
    return client


def forgotten_events(user: User) -> list[SecurityEvent]:
    return list(SecurityEvent.objects.filter(user=user, kind=EventKind.DEVICE_FORGOTTEN))


def test_signing_in_through_the_form_lists_this_browser_as_trusted(make_client, user):
    laptop = make_client(FIREFOX_LINUX)
    signed = laptop.post(reverse("signin:login"), {"identifier": "alice", "password": PASSWORD})
    assert signed.status_code == 302

    response = laptop.get(LIST)

    [row] = response.context["devices"]
    assert (row.browser, row.system, row.is_current) == ("Firefox 140", "Linux", True)
    page = response.content.decode()
    assert "Trusted devices" in page
    assert page.count("This browser") == 1
    assert forget_url(KnownDevice.objects.get(user=user)) in page
    assert "Forget all other devices" not in page  # nothing else to forget


def test_page_lists_every_trusted_device_and_marks_this_browser(make_client, user, make_user):
    laptop = browser(make_client, user, FIREFOX_LINUX)
    desktop = browser(make_client, user, CHROME_WINDOWS)
    KnownDevice.objects.filter(pk=trust(desktop, user).pk).update(
        last_seen=timezone.now() - timedelta(days=3), ip_address="203.0.113.9", confirmed=True
    )
    browser(make_client, make_user(username="bob"), SAFARI_IPHONE)  # Bob's: not listed

    response = laptop.get(LIST)

    rows = response.context["devices"]
    assert [(r.browser, r.system, r.is_current, r.confirmed) for r in rows] == [
        ("Firefox 140", "Linux", True, False),
        ("Chrome 138", "Windows 10", False, True),
    ]
    page = response.content.decode()
    devices = page[page.index("Trusted devices") :]
    assert devices.count("This browser") == 1
    firefox, chrome = devices.index("Firefox 140"), devices.index("Chrome 138")
    assert firefox < devices.index("This browser") < chrome
    assert "203.0.113.9" in devices
    assert "Confirmed" in devices and "Not confirmed" in devices
    assert "Mobile Safari" not in page
    for device in KnownDevice.objects.filter(user=user):
        assert forget_url(device) in page
    assert "Forget all other devices" in page


def test_a_browser_without_the_device_cookie_is_not_marked(signed_in, make_client, user):
    browser(make_client, user, CHROME_WINDOWS)
    page = signed_in.get(LIST).content.decode()
    assert "This browser" not in page
    assert "Forget all other devices" in page


def test_forgetting_a_device_makes_it_new_at_its_next_signin(make_client, user):
    """Issue 3 §5: a device is revocable; forgotten, its next sign-in counts as a new device's."""
    laptop = browser(make_client, user, FIREFOX_LINUX)
    desktop = browser(make_client, user, CHROME_WINDOWS)
    target = KnownDevice.objects.get(user=user, user_agent=CHROME_WINDOWS)
    assert is_known_device(request=request_from(desktop), user=user)

    response = laptop.post(forget_url(target), follow=True)

    assert response.redirect_chain == [(LIST, 302)]
    assert "Device forgotten" in response.content.decode()
    assert not KnownDevice.objects.filter(pk=target.pk).exists()
    [event] = forgotten_events(user)
    assert event.details["user_agent"] == CHROME_WINDOWS
    assert event.details["this_browser"] is False
    assert event.user_agent == FIREFOX_LINUX  # done from the laptop
    assert not is_known_device(request=request_from(desktop), user=user)
    assert is_known_device(request=request_from(laptop), user=user)
    # The desktop signs in again: the sign-in is recorded as one from a new device.
    desktop.post(reverse("signin:login"), {"identifier": "alice", "password": PASSWORD})
    signin = SecurityEvent.objects.filter(user=user, kind=EventKind.SIGNIN_SUCCEEDED).first()
    assert signin is not None and signin.details["new_device"] is True


def test_forgetting_this_browser_keeps_it_signed_in(make_client, user):
    laptop = browser(make_client, user, FIREFOX_LINUX)
    mine = KnownDevice.objects.get(user=user)

    response = laptop.post(forget_url(mine), follow=True)

    assert response.status_code == 200
    assert not KnownDevice.objects.filter(user=user).exists()
    [event] = forgotten_events(user)
    assert event.details["this_browser"] is True
    assert not is_known_device(request=request_from(laptop), user=user)
    assert "No trusted devices yet" in response.content.decode()


def test_forgetting_the_same_device_twice_is_refused_clearly(make_client, user):
    laptop = browser(make_client, user, FIREFOX_LINUX)
    target = trust(browser(make_client, user, CHROME_WINDOWS), user)
    laptop.post(forget_url(target))

    again = laptop.post(forget_url(target))

    assert again.status_code == 404
    assert "may have been forgotten already" in again.content.decode()
    assert len(forgotten_events(user)) == 1


def test_forget_all_other_devices_keeps_this_browser(make_client, user, make_user):
    laptop = browser(make_client, user, FIREFOX_LINUX)
    others = [browser(make_client, user, CHROME_WINDOWS), browser(make_client, user, SAFARI_IPHONE)]
    bob = make_user(username="bob")
    bobs = browser(make_client, bob, CHROME_WINDOWS)
    mine = KnownDevice.objects.get(user=user, user_agent=FIREFOX_LINUX)

    response = laptop.post(FORGET_OTHERS, follow=True)

    assert "Forgot 2 other devices" in response.content.decode()
    assert list(KnownDevice.objects.filter(user=user)) == [mine]
    assert KnownDevice.objects.filter(user=bob).count() == 1
    assert is_known_device(request=request_from(bobs), user=bob)
    for other in others:
        assert not is_known_device(request=request_from(other), user=user)
        assert other.get(LIST).status_code == 200  # forgetting does not sign out
    [event] = forgotten_events(user)
    assert event.details == {"count": 2, "all_others": True}
    # A second submit finds nothing to forget and records nothing more.
    again = laptop.post(FORGET_OTHERS, follow=True)
    assert "no other devices to forget" in again.content.decode()
    assert len(forgotten_events(user)) == 1


@pytest.mark.parametrize("whose", ["another account's", "a missing"])
def test_a_device_that_is_not_yours_cannot_be_forgotten(make_client, user, make_user, whose):
    laptop = browser(make_client, user, FIREFOX_LINUX)
    bob = make_user(username="bob")
    bobs = browser(make_client, bob, CHROME_WINDOWS)
    target_id = KnownDevice.objects.get(user=bob).pk if whose == "another account's" else 999_999

    response = laptop.post(reverse("sessions:forget_device", args=[target_id]))

    assert response.status_code == 404
    assert "Device not found" in response.content.decode()
    assert KnownDevice.objects.count() == 2
    assert is_known_device(request=request_from(bobs), user=bob)
    assert not SecurityEvent.objects.filter(kind=EventKind.DEVICE_FORGOTTEN).exists()


@pytest.mark.parametrize("name", ["sessions:forget_device", "sessions:forget_other_devices"])
def test_a_stale_session_forgets_nothing_and_returns_to_the_list(make_client, user, name):
    """ASVS 7.5.1: the password is confirmed again before a device is forgotten."""
    stale = browser(make_client, user, FIREFOX_LINUX, reauthenticated=False)
    other = trust(browser(make_client, user, CHROME_WINDOWS), user)
    url = reverse(name, args=[other.pk]) if name == "sessions:forget_device" else reverse(name)

    response = stale.post(url)

    assert response.status_code == 302
    assert response["Location"] == CONFIRM_THEN_LIST
    assert KnownDevice.objects.filter(user=user).count() == 2
    assert forgotten_events(user) == []


@pytest.mark.parametrize("name", ["sessions:forget_device", "sessions:forget_other_devices"])
def test_get_never_forgets_a_device(make_client, user, name):
    laptop = browser(make_client, user, FIREFOX_LINUX)
    other = trust(browser(make_client, user, CHROME_WINDOWS), user)
    url = reverse(name, args=[other.pk]) if name == "sessions:forget_device" else reverse(name)

    assert laptop.get(url).status_code == 405
    assert KnownDevice.objects.filter(user=user).count() == 2
    assert forgotten_events(user) == []


def test_forgetting_needs_the_csrf_token(user):
    laptop = sign_in(Client(enforce_csrf_checks=True), user)
    other = trust(sign_in(Client(), user), user)

    for url in [forget_url(other), FORGET_OTHERS]:
        assert laptop.post(url).status_code == 403
    assert KnownDevice.objects.filter(pk=other.pk).exists()
    assert forgotten_events(user) == []


@pytest.mark.parametrize("name", ["sessions:forget_device", "sessions:forget_other_devices"])
def test_anonymous_visitors_are_sent_to_sign_in(client, user, name):
    device = KnownDevice.objects.create(user=user, device_digest="0" * 64)
    url = reverse(name, args=[device.pk]) if name == "sessions:forget_device" else reverse(name)
    response = client.post(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("signin:login"))
    assert KnownDevice.objects.filter(pk=device.pk).exists()
