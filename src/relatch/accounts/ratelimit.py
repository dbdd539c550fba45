"""Rate limits (moving windows): ``hit`` counts an event and says whether it fitted, in one step.

Where the counts live (RATELIMIT_STORAGE_URL):

- ``redis://…`` (RELATCH_REDIS_URL set): in Redis, through the ``limits`` library, whose moving
  window ``hit`` is one Lua script, so check and count are atomic across processes. While Redis
  does not answer, the database store below stands in (``relatch.accounts.redis_outage``): a
  limit stays a limit through an outage instead of turning every request into a 500.
- ``database`` (no Redis): in the database (``relatch.accounts.limit_store``), every web
  process sharing the same rows under row locks. So RELATCH_WEB_WORKERS above 1 without Redis
  is safe: three processes allow what one would (issue 18 §8 saw 85 of 30 when each process
  kept its own count in memory).

Callers should limit with ``hit`` alone: ``allows`` then ``hit`` is a check and a count in two
steps, and parallel requests all pass the check before any counts.
"""

import functools
import threading
import time
from collections.abc import Callable

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

from relatch.accounts import limit_store
from relatch.accounts.limit_store import Window
from relatch.accounts.redis_outage import CLIENT_OPTIONS, outage_for, with_fallback

DATABASE = "database"

# The threads of a web process meet here on their first requests: one storage per process.
_creating = threading.Lock()

@functools.cache
def _limiter(url: str) -> tuple[Storage, MovingWindowRateLimiter]:
    with _creating:
        storage = storage_from_string(url, **CLIENT_OPTIONS)
    assert isinstance(storage, Storage)  # a synchronous storage, never limits.aio's
    return storage, MovingWindowRateLimiter(storage)


@functools.cache
def _item(limit: str) -> RateLimitItem:
    return parse(limit)


def window(limit: str) -> Window:
    """``limit`` ("30/15 minutes") as the database store's Window."""
    item = _item(limit)
    return Window(item.amount, float(item.get_expiry()))


def _db_key(limit: str, key: str) -> str:
    # One row per limit and key, as limits keys Redis by both: a scope used with two limits
    # keeps two counts.
    return f"{limit}|{key}"


def _redis_or_database[T](
    redis_call: Callable[[MovingWindowRateLimiter], T], database_call: Callable[[], T]
) -> T:
    url = settings.RATELIMIT_STORAGE_URL
    if url == DATABASE:
        return database_call()
    return with_fallback(outage_for(url), lambda: redis_call(_limiter(url)[1]), database_call)


def hit(*, scope: str, key: str, limit: str) -> bool:
    """Count one event for ``key``; False when ``limit`` (e.g. "5/hour") is already used up."""
    return _redis_or_database(
        lambda limiter: limiter.hit(_item(limit), scope, key),
        lambda: limit_store.hit(scope=scope, key=_db_key(limit, key), window=window(limit)),
    )


def allows(*, scope: str, key: str, limit: str) -> bool:
    """True when one more event would be within ``limit``, without counting one."""
    return _redis_or_database(
        lambda limiter: limiter.test(_item(limit), scope, key),
        lambda: limit_store.allows(scope=scope, key=_db_key(limit, key), window=window(limit)),
    )


def seconds_until_allowed(*, scope: str, key: str, limit: str) -> float:
    """How long until ``limit`` allows one more event for ``key`` (0 when it does now)."""

    def from_redis(limiter: MovingWindowRateLimiter) -> float:
        stats = limiter.get_window_stats(_item(limit), scope, key)
        return 0.0 if stats.remaining > 0 else max(stats.reset_time - time.time(), 0.0)

    return _redis_or_database(
        from_redis,
        lambda: limit_store.seconds_until_allowed(
            scope=scope, key=_db_key(limit, key), window=window(limit)
        ),
    )


def clear(*, scope: str, key: str, limit: str) -> None:
    _redis_or_database(
        lambda limiter: limiter.clear(_item(limit), scope, key),
        lambda: limit_store.clear(scope=scope, key=_db_key(limit, key)),
    )


def reset_all(*, database: bool = True) -> None:
    """Forget every counter (tests, and operators after a false alarm): in Redis when it is
    used, and in the database (which holds the password-guess limits in any case) unless
    ``database`` is False (a test's rows go with its transaction anyway)."""
    url = settings.RATELIMIT_STORAGE_URL
    if url != DATABASE:
        _limiter(url)[0].reset()
    if database:
        limit_store.reset()
