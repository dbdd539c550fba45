"""New tokens expire (issue 21): after TOKEN_DEFAULT_DAYS unless their maker picks another
date, never later than TOKEN_MAX_DAYS, on the page and in the API alike; "never" is no longer
offered, and tokens made before keep working."""

import re
from datetime import UTC, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from relatch.accounts.models import User
from relatch.audit.models import EventKind, SecurityEvent
from relatch.index.models import APIToken
from tests.index.test_tokens import NEW, post_create, shown_token
from tests.mfa.factor_rows import add_app

API = "/api/v1/account/tokens"


@pytest.fixture
def alice(user: User) -> User:
    add_app(user)
    return user


def api_create(client: Client, **fields: Any) -> Any:
    return client.post(API, {"name": "ci", **fields}, content_type="application/json")


def close_to(at: Any, days: int) -> bool:
    return abs(at - (timezone.now() + timedelta(days=days))) < timedelta(minutes=1)


def test_the_api_defaults_to_the_default_expiry(signed_in: Client, alice: User, mail: Any) -> None:
    created = api_create(signed_in)
    assert created.status_code == 201, created.content
    row = APIToken.objects.get()
    assert close_to(row.expires_at, 90)
    assert created.json()["expires_at"] is not None
    event = SecurityEvent.objects.get(kind=EventKind.API_TOKEN_CREATED)
    assert event.details["expires_at"] == row.expires_at.isoformat()
    body = mail.text(mail.last("alice@example.org"))
    assert f"Expires: {row.expires_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC" in body


def test_the_page_makes_a_token_that_expires_by_default(signed_in: Client, alice: User) -> None:
    page = signed_in.get(NEW).text
    select = re.search(r'<select name="expiry".*?</select>', page, re.S)
    assert select, "no expiry choice on the page"
    offered = re.findall(r'<option value="([^"]+)"', select.group(0))
    assert offered == ["30", "90", "180", "366", "date"]  # no "never"
    created = post_create(signed_in)  # the form's default choice, 90
    assert created.status_code == 200
    shown_token(created)
    expires_at = APIToken.objects.get().expires_at
    assert close_to(expires_at, 90)
    day = expires_at.astimezone(UTC)
    assert f"{day.day} {day:%b} {day.year}</time>: make a new one before then" in created.text


@pytest.mark.parametrize("where", ["page", "api"])
def test_an_expiry_past_the_cap_is_refused_naming_the_latest_date(
    signed_in: Client, alice: User, settings: Any, where: str
) -> None:
    settings.TOKEN_MAX_DAYS, settings.TOKEN_DEFAULT_DAYS = 120, 60
    latest = (timezone.now() + timedelta(days=120)).astimezone(UTC)
    if where == "page":
        too_far = (latest + timedelta(days=1)).date().isoformat()
        refused = post_create(signed_in, expiry="date", expires_on=too_far)
        text = refused.text
    else:
        refused = api_create(signed_in, expires_at=(latest + timedelta(hours=1)).isoformat())
        text = refused.json()["detail"]
    assert refused.status_code == 400
    assert (f"A token can work for at most 120 days: choose an expiry on or before "
            f"{latest:%Y-%m-%d}") in text
    assert not APIToken.objects.exists()
    # The latest date itself is allowed.
    if where == "page":
        ok = post_create(signed_in, expiry="date", expires_on=latest.date().isoformat())
        assert ok.status_code == 200
    else:
        assert api_create(signed_in, expires_at=latest.isoformat()).status_code == 201


def test_the_offered_lifetimes_follow_the_settings(
    signed_in: Client, alice: User, settings: Any
) -> None:
    settings.TOKEN_MAX_DAYS, settings.TOKEN_DEFAULT_DAYS = 100, 45
    page = signed_in.get(NEW).text
    assert '<option value="45" selected>In 45 days (the default)</option>' in page
    assert 'value="180"' not in page and 'value="366"' not in page
    assert "At most 100 days ahead." in page
    refused = post_create(signed_in, expiry="366")
    assert refused.status_code == 400
    assert "Choose when the token expires." in refused.text
    assert post_create(signed_in, expiry="45").status_code == 200
    assert close_to(APIToken.objects.get().expires_at, 45)


def test_an_api_expiry_without_a_time_zone_is_refused(signed_in: Client, alice: User) -> None:
    refused = api_create(signed_in, expires_at="2030-01-01T00:00:00")
    assert refused.status_code == 400
    assert "time zone" in refused.json()["detail"]
    assert not APIToken.objects.exists()
