"""Reads of the security history for pages."""

from django.core.paginator import Page, Paginator

from relatch.accounts.models import User
from relatch.audit.models import SecurityEvent

HISTORY_PAGE_SIZE = 25


def security_history_page(*, user: User, page_number: str | int | None) -> Page[SecurityEvent]:
    """One page of the user's security events, newest first; a bad page number gives page 1."""
    events = SecurityEvent.objects.filter(user=user).order_by("-created_at", "-id")
    return Paginator(events, HISTORY_PAGE_SIZE).get_page(page_number)
