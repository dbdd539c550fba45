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
