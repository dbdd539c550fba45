"""Rate limits (moving windows) on top of the ``limits`` library.

Counters live in Redis when RELATCH_REDIS_URL is set, else in the server process (the embedded
default runs one server process, so the counts are whole).
"""

import functools
import threading
import time

# Imported whole before any request runs, not lazily. limits finds the Redis client in
# sys.modules and reads its __version__; when another thread is still importing it (Django's
# Redis cache imports it lazily too), limits sees a half-made module, "Found version: 0.0.0",
# and the request is a 500 (bench/load.py and tests/test_load.py saw it on PostgreSQL + Redis).
# An import statement waits for another thread's import of the same module to finish.
import redis  # noqa: F401
from django.conf import settings
from limits import RateLimitItem, parse
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

# The threads of a web process meet here on their first requests: one storage per process.
_creating = threading.Lock()


@functools.cache
def _limiter(url: str) -> tuple[Storage, MovingWindowRateLimiter]:
    with _creating:
        storage = storage_from_string(url)
    assert isinstance(storage, Storage)  # a synchronous storage, never limits.aio's
    return storage, MovingWindowRateLimiter(storage)


def _item(limit: str) -> RateLimitItem:
    return parse(limit)


def hit(*, scope: str, key: str, limit: str) -> bool:
    """Count one event for ``key``; False when ``limit`` (e.g. "5/hour") is already used up."""
    _, limiter = _limiter(settings.RATELIMIT_STORAGE_URL)
    return limiter.hit(_item(limit), scope, key)


def allows(*, scope: str, key: str, limit: str) -> bool:
    """True when one more event would be within ``limit``, without counting one."""
    _, limiter = _limiter(settings.RATELIMIT_STORAGE_URL)
    return limiter.test(_item(limit), scope, key)


def seconds_until_allowed(*, scope: str, key: str, limit: str) -> float:
    """How long until ``limit`` allows one more event for ``key`` (0 when it does now)."""
    _, limiter = _limiter(settings.RATELIMIT_STORAGE_URL)
    stats = limiter.get_window_stats(_item(limit), scope, key)
    return 0.0 if stats.remaining > 0 else max(stats.reset_time - time.time(), 0.0)


def clear(*, scope: str, key: str, limit: str) -> None:
    _, limiter = _limiter(settings.RATELIMIT_STORAGE_URL)
    limiter.clear(_item(limit), scope, key)


def reset_all() -> None:
    """Forget every counter (tests, and operators after a false alarm)."""
    storage, _ = _limiter(settings.RATELIMIT_STORAGE_URL)
    storage.reset()
