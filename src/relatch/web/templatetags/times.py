"""One way of showing a moment, on every page: a ``<time>`` element whose title is the exact
UTC moment (and, with static/relatch/times.js, the reader's local time too).

    {{ at|relative_time }}
    <time datetime="2030-01-02T03:04:05+00:00" title="2030-01-02 03:04:05 UTC">in 9 minutes</time>

    {{ at|calendar_date }}   where the day matters more than the distance (a release date)
    <time datetime="2030-01-02T03:04:05+00:00" title="2030-01-02 03:04:05 UTC">2 Jan 2030</time>

A relative time reads the same in every time zone, so nobody converts "03:04 UTC" in their head
to know whether a link still works; the exact UTC moment is on hover (``title``) and for
machines (``datetime``). The amount is rounded down: a link said to work "in 9 minutes" never
stops sooner than the reader expects. Mails keep the exact UTC time (they have no hover).
"""

from datetime import UTC, datetime, timedelta

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from relatch.web.templatetags.durations import in_words

register = template.Library()
_UNDER_A_MINUTE = timedelta(minutes=1)
# Beyond a month, days and hours are noise ("400 days ago"); months and years read better.
# Calendar lengths vary; the exact moment is on hover.
_MONTH_DAYS = 30
_YEAR_DAYS = 365
# English whatever the server's locale (strftime's %b follows it).
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@register.filter
def relative_time(at: datetime | None) -> SafeString | str:
    """``at`` as "in 9 minutes" or "2 hours 5 minutes ago" in a ``<time>`` element."""
    if at is None:
        return ""
    return _time_element(at, relative_words(at, now=timezone.now()))


@register.filter
def calendar_date(at: datetime | None) -> SafeString | str:
    """``at``'s day (in UTC) as "2 Jan 2030", in the same ``<time>`` element."""
    if at is None:
        return ""
    day = _utc(at)
    return _time_element(at, f"{day.day} {_MONTHS[day.month - 1]} {day.year}")


def relative_words(at: datetime, *, now: datetime) -> str:
    """ "in 9 minutes", "9 minutes ago", "1 year 2 months ago", or "in less than a minute" /
    "just now"."""
    delta = at - now
    if abs(delta) < _UNDER_A_MINUTE:
        return "in less than a minute" if delta > timedelta(0) else "just now"
    if delta > timedelta(0):
        return f"in {_amount(delta)}"
    return f"{_amount(-delta)} ago"


def _amount(delta: timedelta) -> str:
    """The two largest units of ``delta``, rounded down."""
    days = delta.days
    if days < _MONTH_DAYS:
        return in_words(delta)
    if days < _YEAR_DAYS:
        return _two_units((days // _MONTH_DAYS, "month"), (days % _MONTH_DAYS, "day"))
    return _two_units(
        (days // _YEAR_DAYS, "year"), ((days % _YEAR_DAYS) // _MONTH_DAYS, "month")
    )


def _two_units(first: tuple[int, str], second: tuple[int, str]) -> str:
    words = [f"{n} {name}{'' if n == 1 else 's'}" for n, name in (first, second) if n]
    return " ".join(words)


def _time_element(at: datetime, text: str) -> SafeString:
    exact = _utc(at)
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        exact.isoformat(),
        f"{exact:%Y-%m-%d %H:%M:%S} UTC",
        text,
    )


def _utc(at: datetime) -> datetime:
    return at.astimezone(UTC) if timezone.is_aware(at) else at.replace(tzinfo=UTC)
