"""The devices page as one list (issue 19): a browser and its sessions are one entry, with a
name the owner sets, how it signed in, when it was first and last seen, and a coarse place."""

import logging
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from relatch.accounts.models import KnownDevice, UserSession
from relatch.accounts.sessions.methods import method_label
from relatch.accounts.sessions.places import coarse_network, geoip_place
from relatch.audit.models import EventKind, SecurityEvent
from tests.conftest import sign_in
from tests.mfa.factor_rows import add_app
from tests.mfa.signin_flow import APP, app_code, enrol_app, page_text, password_step, trust_browser
from tests.recovery.requests import make_request

pytestmark = pytest.mark.django_db

FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"
CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/138.0.0.0 Safari/537.36"
)
LIST = reverse("sessions:list")


def signed_in_by_form(make_client: Any, agent: str, ip: str = "127.0.0.1") -> Client:
    """A browser that signed in through the sign-in form (password only), as people do."""
    client = make_client(agent)
    client.defaults["REMOTE_ADDR"] = ip
    assert password_step(client).status_code == 302
    return client


def entries(response: Any) -> list[tuple[str, bool]]:
    return [(e.name, e.is_current) for e in response.context["devices"]]


def rename_url(device: KnownDevice) -> str:
    return reverse("sessions:rename_device", args=[device.pk])


# --- one entry a browser --------------------------------------------------------------------


def test_a_trusted_browser_and_its_session_are_one_entry(make_client, user):
    laptop = signed_in_by_form(make_client, FIREFOX_LINUX)
    signed_in_by_form(make_client, CHROME_WINDOWS, ip="203.0.113.9")
    assert (KnownDevice.objects.count(), UserSession.objects.count()) == (2, 2)

    response = laptop.get(LIST)

    assert response.status_code == 200
    assert entries(response) == [("Firefox on Linux", True), ("Chrome on Windows", False)]
    text = page_text(response)
    assert text.count("This device") == 1
    assert text.count("Password only") == 2
    assert "Chrome 138 on Windows 10" in text
    assert "Network 203.0.113.0/24" in text  # no GeoIP database: the network, not the address
    assert "203.0.113.9" not in text
    assert "End all other devices" in text


def test_a_session_from_a_browser_that_is_not_trusted_is_its_own_entry(make_client, user):
    laptop = signed_in_by_form(make_client, FIREFOX_LINUX)
    cookieless = sign_in(make_client(CHROME_WINDOWS), user)  # no device cookie
    session = UserSession.objects.get(user=user, device_digest="")

    response = laptop.get(LIST)

    [mine, other] = response.context["devices"]
    assert (mine.trusted, other.trusted, other.session_id) == (True, False, session.pk)
    text = page_text(response)
    assert "not a trusted device" in text
    assert reverse("sessions:end", args=[session.pk]) in text
    assert cookieless.get(LIST).status_code == 200


def test_the_sign_in_method_is_the_factor_the_browser_signed_in_with(make_client, user):
    secret = enrol_app(user)
    laptop = make_client(FIREFOX_LINUX)
    trust_browser(laptop, user)  # a known browser: no mailed check after the app code
    password_step(laptop)
    assert laptop.post(APP, {"code": app_code(user, secret)}).status_code == 302

    [entry] = laptop.get(LIST).context["devices"]

    assert entry.method == "Password and app code"
    # Written with the rows at the sign-in, not guessed later from the history.
    assert UserSession.objects.get(user=user).signin_method == "Password and app code"
    assert KnownDevice.objects.get(user=user).signin_method == "Password and app code"


@pytest.mark.parametrize(
    ("factor", "details", "label"),
    [
        ("password", {}, "Password only"),
        ("totp", {}, "Password and app code"),
        ("webauthn", {}, "Password and security key"),
        ("webauthn", {"passkey": True}, "Passkey"),
        ("recovery_code", {}, "Password and recovery code"),
        ("totp", {"confirmed_by": "email_link"}, "Password and app code, confirmed by email"),
        ("recovery_code", {"confirmed_by": "self_recovery"}, "Account recovery"),
        ("", {}, "Not recorded"),
        ("something new", {}, "Not recorded"),
    ],
)
def test_sign_in_events_are_read_as_people_say_them(factor, details, label):
    assert method_label(factor, details) == label


# --- names ----------------------------------------------------------------------------------


def test_a_device_can_be_named_and_the_name_is_shown_escaped(make_client, user, caplog):
    laptop = signed_in_by_form(make_client, FIREFOX_LINUX)
    device = KnownDevice.objects.get(user=user)
    name = "Noor's <b>laptop</b>"

    with caplog.at_level(logging.DEBUG):
        response = laptop.post(rename_url(device), {"name": f"  {name}  "}, follow=True)

    assert response.redirect_chain == [(LIST, 302)]
    device.refresh_from_db()
    assert device.name == name
    page = response.content.decode()
    assert "Noor&#x27;s &lt;b&gt;laptop&lt;/b&gt;" in page and "<b>laptop</b>" not in page
    assert name not in caplog.text  # what the owner typed is not logged
    renamed = SecurityEvent.objects.get(user=user, kind=EventKind.DEVICE_RENAMED)
    assert (renamed.details["from"], renamed.details["to"]) == ("", name)
    # An empty name gives the device back its browser's name.
    laptop.post(rename_url(device), {"name": ""})
    assert entries(laptop.get(LIST)) == [("Firefox on Linux", True)]


@pytest.mark.parametrize(
    ("name", "error"),
    [("x" * 61, "at most 60 characters"), ("lap\u202etop", "control characters")],
)
def test_a_name_too_long_or_with_control_characters_is_refused(make_client, user, name, error):
    laptop = signed_in_by_form(make_client, FIREFOX_LINUX)
    device = KnownDevice.objects.get(user=user)

    response = laptop.post(rename_url(device), {"name": name})

    assert response.status_code == 400
    assert error in page_text(response)
    device.refresh_from_db()
    assert device.name == ""


@pytest.mark.parametrize("whose", ["another account's", "a missing"])
def test_a_device_that_is_not_yours_cannot_be_renamed(make_client, user, make_user, whose):
    laptop = signed_in_by_form(make_client, FIREFOX_LINUX)
    bob = make_user(username="bob")
    bobs = KnownDevice.objects.create(user=bob, device_digest="b" * 64, name="Bob's phone")
    target = bobs.pk if whose == "another account's" else 999_999

    response = laptop.post(reverse("sessions:rename_device", args=[target]), {"name": "mine"})

    assert response.status_code == 404
    assert "Device not found" in page_text(response)
    bobs.refresh_from_db()
    assert bobs.name == "Bob's phone"
    assert not SecurityEvent.objects.filter(kind=EventKind.DEVICE_RENAMED).exists()
    assert KnownDevice.objects.get(user=user).name == ""


def test_renaming_needs_a_recent_password_and_a_post(make_client, user):
    stale = signed_in_by_form(make_client, FIREFOX_LINUX)
    device = KnownDevice.objects.get(user=user)
    session = stale.session
    session.pop("relatch_reauth_at")
    session.save()

    assert stale.get(rename_url(device)).status_code == 405
    response = stale.post(rename_url(device), {"name": "laptop"})

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("signin:reauthenticate"))
    device.refresh_from_db()
    assert device.name == ""


# --- places ---------------------------------------------------------------------------------


@pytest.fixture
def geoip(tmp_path: Path, settings: Any) -> Path:
    """A GeoIP database of two networks, as an operator's GeoLite2-City file holds them."""
    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-City")
    writer.insert_network(IPSet(["203.0.113.0/24"]), {
        "city": {"names": {"en": "Lyon"}}, "country": {"names": {"en": "France"}},
    })
    writer.insert_network(IPSet(["198.51.100.0/24"]), {"country": {"names": {"en": "Japan"}}})
    path = tmp_path / "GeoLite2-City.mmdb"
    writer.to_db_file(str(path))
    settings.GEOIP_DATABASE = str(path)
    return path


@pytest.mark.parametrize(
    ("ip", "shown"),
    [
        ("203.0.113.9", "Lyon, France"),
        ("198.51.100.4", "Japan"),
        ("192.0.2.1", "Network 192.0.2.0/24"),  # not in the database
        ("2001:db8:1:2::5", "Network 2001:db8:1::/48"),
    ],
)
def test_a_configured_geoip_database_names_the_place(make_client, user, geoip, ip, shown):
    signed_in_by_form(make_client, FIREFOX_LINUX, ip=ip)
    laptop = signed_in_by_form(make_client, CHROME_WINDOWS)

    text = page_text(laptop.get(LIST))

    assert shown in text
    assert ip not in text


@pytest.mark.parametrize("content", [None, b"not a MaxMind database"])
def test_a_missing_or_broken_database_shows_the_network(make_client, user, settings, tmp_path,
                                                        content):
    path = tmp_path / "GeoLite2-City.mmdb"
    if content is not None:
        path.write_bytes(content)
    settings.GEOIP_DATABASE = str(path)
    laptop = signed_in_by_form(make_client, FIREFOX_LINUX, ip="203.0.113.9")

    response = laptop.get(LIST)

    assert response.status_code == 200
    assert "Network 203.0.113.0/24" in page_text(response)


class FailingReader:
    """A reader whose lookups fail as a corrupt file's can, mid-read (a real file cannot be
    made to fail on one lookup and not at opening)."""

    def get(self, ip_address: str) -> Any:
        raise RuntimeError("corrupt search tree")


class OddReader:
    def get(self, ip_address: str) -> Any:
        return {"city": "not a mapping", "country": {"names": {"en": 7}}}


@pytest.mark.parametrize("reader", [FailingReader(), OddReader(), None])
def test_a_failed_lookup_is_no_place(reader):
    assert geoip_place("203.0.113.9", reader=reader) == ""


@pytest.mark.parametrize(
    ("ip", "network"),
    [("203.0.113.9", "203.0.113.0/24"), ("::ffff:203.0.113.9", "203.0.113.0/24"),
     ("2001:db8:1:2::5", "2001:db8:1::/48"), ("not an address", "")],
)
def test_the_network_is_coarse(ip, network):
    assert coarse_network(ip) == network


# --- the staff desk -------------------------------------------------------------------------


def test_the_desk_shows_sign_ins_with_described_browsers(client, make_client, user, make_user):
    signed_in_by_form(make_client, FIREFOX_LINUX)
    staff = make_user(username="dana", is_staff=True)
    add_app(staff)
    recovery = make_request(user, contact="alice@new.example")

    page = page_text(sign_in(client, staff).get(f"/desk/{recovery.public_id}/"))

    assert "Firefox 140 on Linux" in page
    assert FIREFOX_LINUX not in page
    assert SecurityEvent.objects.filter(user=user, kind=EventKind.SIGNIN_SUCCEEDED).exists()
