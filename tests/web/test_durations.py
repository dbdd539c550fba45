"""The desk's targets read as words, not as a clock (web/templatetags/durations.py)."""

from datetime import timedelta

import pytest

from relatch.web.templatetags.durations import in_words


@pytest.mark.parametrize(("value", "words"), [
    (timedelta(days=2), "2 days"),
    (timedelta(days=1, hours=12), "1 day 12 hours"),
    (timedelta(hours=1, minutes=1, seconds=59), "1 hour 1 minute"),
    (timedelta(days=3, hours=4, minutes=5), "3 days 4 hours"),
    (timedelta(seconds=59), "0 minutes"),
])
def test_a_duration_in_words(value: timedelta, words: str) -> None:
    assert in_words(value) == words
