"""``{{ some_datetime|relative_time }}``: one way of showing a moment, on every page.

    <time datetime="2030-01-02T03:04:05+00:00" title="2030-01-02 03:04:05 UTC">in 9 minutes</time>

A relative time reads the same in every time zone, so nobody converts "03:04 UTC" in their head
to know whether a link still works; the exact UTC moment is on hover (``title``) and for
machines (``datetime``). The amount is ``durations.in_words``, rounded down: a link said to
work "in 9 minutes" never stops sooner than the reader expects.
"""

from datetime import UTC, datetime, timedelta

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from relatch.web.templatetags.durations import in_words

register = template.Library()
_UNDER_A_MINUTE = timedelta(minutes=1)


@register.filter
def relative_time(at: datetime | None) -> SafeString | str:
    """``at`` as "in 9 minutes" or "2 hours 5 minutes ago" in a ``<time>`` element."""
    if at is None:
        return ""
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        _utc(at).isoformat(),
        f"{_utc(at):%Y-%m-%d %H:%M:%S} UTC",
        relative_words(at, now=timezone.now()),
    )


def relative_words(at: datetime, *, now: datetime) -> str:
    """ "in 9 minutes", "9 minutes ago", or "in less than a minute" / "just now"."""
    delta = at - now
    if abs(delta) < _UNDER_A_MINUTE:
        return "in less than a minute" if delta > timedelta(0) else "just now"
    if delta > timedelta(0):
        return f"in {in_words(delta)}"
    return f"{in_words(-delta)} ago"


def _utc(at: datetime) -> datetime:
    return at.astimezone(UTC) if timezone.is_aware(at) else at.replace(tzinfo=UTC)
