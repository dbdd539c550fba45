"""One way to show a moment (web/templatetags/times.py): relative words, the exact UTC time
on hover and for machines."""

from datetime import UTC, datetime, timedelta

import pytest
from django.template import Context, Template
from django.utils import timezone

from relatch.web.templatetags.times import relative_words

NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(("delta", "words"), [
    (timedelta(minutes=9, seconds=59), "in 9 minutes"),  # rounded down: never later than said
    (timedelta(hours=2, minutes=5), "in 2 hours 5 minutes"),
    (timedelta(days=1, hours=3, minutes=2), "in 1 day 3 hours"),
    (timedelta(seconds=30), "in less than a minute"),
    (timedelta(seconds=-30), "just now"),
    (-timedelta(minutes=3), "3 minutes ago"),
    (-timedelta(days=2), "2 days ago"),
])
def test_a_moment_in_words(delta: timedelta, words: str) -> None:
    assert relative_words(NOW + delta, now=NOW) == words


def test_the_element_gives_the_exact_utc_time() -> None:
    at = timezone.now() + timedelta(minutes=9, seconds=30)
    html = Template("{% load times %}{{ at|relative_time }}").render(Context({"at": at}))
    exact = at.astimezone(UTC)
    assert html == (
        f'<time datetime="{exact.isoformat()}" title="{exact:%Y-%m-%d %H:%M:%S} UTC">'
        "in 9 minutes</time>"
    )


def test_no_moment_shows_nothing() -> None:
    assert Template("{% load times %}{{ at|relative_time }}").render(Context({"at": None})) == ""


@pytest.mark.parametrize(("delta", "words"), [
    (-timedelta(days=29, hours=23), "29 days 23 hours ago"),
    (-timedelta(days=30, hours=5), "1 month ago"),  # hours no longer matter
    (-timedelta(days=95), "3 months 5 days ago"),
    (-timedelta(days=365 * 3 + 70), "3 years 2 months ago"),  # not "1165 days ago"
    (timedelta(days=400), "in 1 year 1 month"),
    (-timedelta(days=365), "1 year ago"),
])
def test_long_ago_reads_in_months_and_years(delta: timedelta, words: str) -> None:
    assert relative_words(NOW + delta, now=NOW) == words


def test_a_calendar_date_is_the_same_element_with_the_day() -> None:
    """For release dates and the like: the day, in UTC, with the same exact title."""
    at = datetime(2026, 12, 7, 23, 30, 5, tzinfo=timezone.get_fixed_timezone(-60))
    html = Template("{% load times %}{{ at|calendar_date }}").render(Context({"at": at}))
    assert html == (
        '<time datetime="2026-12-08T00:30:05+00:00" title="2026-12-08 00:30:05 UTC">'
        "8 Dec 2026</time>"
    )
    assert Template("{% load times %}{{ at|calendar_date }}").render(Context({"at": None})) == ""


def test_every_page_loads_the_local_time_script(client) -> None:
    """times.js puts the reader's local time in each <time>'s title, beside the UTC time; a
    served file (strict CSP), deferred, on every page."""
    page = client.get("/")
    assert '<script src="/static/relatch/times.js" defer></script>' in page.content.decode()
    served = client.get("/static/relatch/times.js")
    assert served.status_code == 200
    source = b"".join(served.streaming_content).decode()
    assert 'querySelectorAll("time[datetime]")' in source
    assert "(your time)" in source
