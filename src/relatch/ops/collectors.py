"""The figures /metrics reads from the database at each scrape, and the registry a scrape
exports (relatch.ops says how the web processes' own counts are summed)."""

import logging
import os
import time
from collections.abc import Iterator
from functools import cache

from django.db import DatabaseError
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from relatch.ops import queues
from relatch.web.health.heartbeat import last_beat

logger = logging.getLogger(__name__)


class QueueCollector(Collector):
    """Task queue depth and age, the mail queue and its failures, and this host's worker
    heartbeat. A few counts over small partial indexes; a database that does not answer
    makes ``relatch_database_up`` 0 instead of failing the scrape."""

    def collect(self) -> Iterator[Metric]:
        yield from _heartbeat()
        try:
            found = list(_from_database())
        except DatabaseError as exc:
            logger.warning("Metrics: the database did not answer (%s)", type(exc).__name__)
            yield GaugeMetricFamily("relatch_database_up",
                                    "Whether the database answered this scrape.", value=0)
            return
        yield GaugeMetricFamily("relatch_database_up",
                                "Whether the database answered this scrape.", value=1)
        yield from found


def _heartbeat() -> Iterator[Metric]:
    seen = last_beat()
    if seen is not None:
        yield GaugeMetricFamily(
            "relatch_worker_heartbeat_age_seconds",
            "Seconds since a background worker on this host last beat (every 10 s).",
            value=max(0.0, time.time() - seen))


def _from_database() -> Iterator[Metric]:
    now = timezone.now()
    due = queues.due_tasks(now)
    mail = queues.mail_queue()
    yield GaugeMetricFamily("relatch_tasks_due", "Background tasks due to run now.",
                            value=due.count)
    yield GaugeMetricFamily("relatch_tasks_oldest_due_age_seconds",
                            "Seconds the longest-waiting due task has waited (0: none).",
                            value=due.oldest_age)
    yield GaugeMetricFamily("relatch_tasks_ready", "Background tasks waiting, due now or "
                            "queued for later (the next recovery tick).",
                            value=queues.ready_tasks())
    yield GaugeMetricFamily("relatch_mail_pending", "Messages not yet sent nor given up.",
                            value=mail.pending)
    yield GaugeMetricFamily("relatch_mail_failing", "Pending messages whose last delivery "
                            "attempt failed (waiting for a retry).", value=mail.failing)
    yield CounterMetricFamily("relatch_mail_given_up", "Messages given up after failing for "
                              "RELATCH_EMAIL_GIVE_UP_HOURS.", value=mail.given_up)


@cache
def _process_registry() -> CollectorRegistry:
    """Every web process's counts (multiprocess mode), else this process's."""
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


@cache
def _queue_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(QueueCollector())
    return registry


def exposition() -> bytes:
    """The Prometheus text of every metric: counts first, then the database's figures."""
    return generate_latest(_process_registry()) + generate_latest(_queue_registry())
