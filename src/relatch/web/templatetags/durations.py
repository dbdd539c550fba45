"""``{{ some_timedelta|in_words }}``: "2 days", "1 day 12 hours", "45 minutes".

Django prints a timedelta as "2 days, 0:00:00", which reads like a clock, not a promise.
"""

from datetime import timedelta

from django import template

register = template.Library()
_UNITS = (("day", 86400), ("hour", 3600), ("minute", 60))


@register.filter
def in_words(value: timedelta) -> str:
    """The two largest non-zero units of ``value``, rounded down; "0 minutes" below a minute."""
    seconds = int(value.total_seconds())
    parts = []
    for name, size in _UNITS:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {name}{'' if count == 1 else 's'}")
    return " ".join(parts[:2]) or "0 minutes"
