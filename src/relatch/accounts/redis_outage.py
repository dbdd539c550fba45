"""Redis is a speed-up, never a single point of failure (issue 18 §9).

When Redis stops answering, each web process carries on without it for the outage: rate limits
in the database (``relatch.accounts.limit_store``, shared by every process), the cache in the
process's own memory. Before, every sign-in was a 500 and half the /simple/ reads failed while
Redis was down for 25 s.

One ``Outage`` per Redis server and process: the first failed call logs one warning and
switches to the fallback; from then on one call every ``RETRY_SECONDS`` tries Redis again (the
others do not wait for it), and the first that succeeds logs that Redis is back. Calls fail
fast: no retries with back-off inside the client (redis-py's default spends ~9 s on a refused
connection) and short socket timeouts.

What the fallback costs, accepted: counts made in Redis before the outage are not seen during
it (the database counts from its own rows), and the cache is per process while it lasts. Cache
entries are keyed by their content's version (an ETag) or single-use markers, so no page kept
in Redis goes stale while writes went elsewhere.
"""

import logging
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import redis
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from limits.errors import StorageError
from redis.backoff import NoBackoff
from redis.retry import Retry

logger = logging.getLogger(__name__)

RETRY_SECONDS = 2.0
# Errors that mean "Redis did not answer": refused, reset, timed out, loading, read-only.
REDIS_ERRORS: tuple[type[BaseException], ...] = (redis.RedisError, StorageError, OSError)
# For every Redis client here: one attempt, and a second at most waiting on a dead server.
CLIENT_OPTIONS: dict[str, Any] = {
    "socket_connect_timeout": 1.0,
    "socket_timeout": 2.0,
    "retry": Retry(NoBackoff(), 0),
}

class Outage:
    """Whether one Redis server is taken to be down in this process, and when to try again."""

    def __init__(self, url: str) -> None:
        self.where = _where(url)  # never the URL itself: it may hold a password
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._next_try = 0.0

    def should_try(self) -> bool:
        """True when Redis is up, or when it is this call's turn to see whether it is back."""
        with self._lock:
            if self._down_since is None:
                return True
            now = time.monotonic()
            if now < self._next_try:
                return False
            self._next_try = now + RETRY_SECONDS  # the other threads keep to the fallback
            return True

    def failed(self, error: BaseException) -> None:
        with self._lock:
            self._next_try = time.monotonic() + RETRY_SECONDS
            if self._down_since is not None:
                return
            self._down_since = time.monotonic()
        logger.warning(
            "Redis at %s does not answer (%s): rate limits use the database and the cache this "
            "process's memory until it does; trying again every %.0f s",
            self.where, type(error).__name__, RETRY_SECONDS,
        )

    def answered(self) -> None:
        if self._down_since is None:  # the common case, without taking the lock
            return
        with self._lock:
            since, self._down_since = self._down_since, None
        if since is not None:
            logger.warning("Redis at %s answers again after %.0f s: rate limits and the cache "
                           "use it again", self.where, time.monotonic() - since)


_outages: dict[str, Outage] = {}
_outages_lock = threading.Lock()


def outage_for(url: str) -> Outage:
    """The one Outage of this process for the Redis server at ``url`` (the cache and the rate
    limits share it: one server, one pair of log lines)."""
    with _outages_lock:
        return _outages.setdefault(_where(url), Outage(url))


def _where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 6379}"


def with_fallback[T](outage: Outage, primary: Callable[[], T], fallback: Callable[[], T]) -> T:
    """``primary()`` (a Redis call) unless Redis is down; ``fallback()`` when it is or fails."""
    if outage.should_try():
        try:
            result = primary()
        except REDIS_ERRORS as error:
            outage.failed(error)
        else:
            outage.answered()
            return result
    return fallback()


class FallbackRedisCache(RedisCache):
    """Django's Redis cache, falling back to this process's memory while Redis is down.

    CACHES = {"default": {"BACKEND": "relatch.accounts.redis_outage.FallbackRedisCache",
                          "LOCATION": REDIS_URL}}
    """

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        options = {**CLIENT_OPTIONS, **params.get("OPTIONS", {})}
        super().__init__(server, {**params, "OPTIONS": options})
        self._outage = outage_for(server.split(",")[0])
        local = {key: value for key, value in params.items() if key != "OPTIONS"}
        self._local = LocMemCache(f"relatch-redis-fallback-{server}", local)


def _guarded(name: str) -> Callable[..., Any]:
    redis_method = getattr(RedisCache, name)

    def method(self: FallbackRedisCache, *args: Any, **kwargs: Any) -> Any:
        return with_fallback(
            self._outage,
            lambda: redis_method(self, *args, **kwargs),
            lambda: getattr(self._local, name)(*args, **kwargs),
        )

    method.__name__ = name
    method.__doc__ = redis_method.__doc__
    return method


# Every call that reaches Redis; the rest of BaseCache (get_or_set, decr, the async variants)
# goes through these.
for _name in ("add", "get", "set", "touch", "delete", "get_many", "has_key", "incr", "set_many",
              "delete_many", "clear"):
    setattr(FallbackRedisCache, _name, _guarded(_name))
