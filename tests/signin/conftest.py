"""Fixtures of the sign-in tests: every test starts and ends with an empty cache (the
throttling counters live there), and Alice has a second verified address (every notice goes
to both)."""

import pytest
from django.core.cache import cache
from django.utils import timezone


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Failure counters (of unknown names, per IP, per device) live in the cache; no test sees
    another's."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def alice(user):
    """Alice with a second verified address (every notice goes to both)."""
    user.emails.create(address="alice@work.example", verified=True, verified_at=timezone.now())
    return user
