"""``relatch resilient_db_worker``: ``db_worker`` that waits out database outages.

``relatch worker`` and the worker ``relatch serve`` starts run this command; it takes
``db_worker``'s options (without ``--reload``) and runs ``relatch.notify.worker.SteadyWorker``.
"""

from typing import Any

from django.core.management.base import CommandError
from django_tasks_db.management.commands import db_worker

from relatch.notify.worker import SteadyWorker


class Command(db_worker.Command):
    help = "Run the background worker; a database outage is waited out, not a reason to exit."

    def handle(
        self, *, verbosity: int, queue_name: str, interval: float, batch: bool,
        backend_name: str, startup_delay: bool, max_tasks: int | None, worker_id: str,
        exclude_queues: str, **options: Any,
    ) -> None:
        self.configure_logging(verbosity)
        queue_names = queue_name.split(",")
        excluded = exclude_queues.split(",") if exclude_queues else []
        if excluded and "*" not in queue_names:
            raise CommandError("--exclude-queues can only be used with --queue-name=*")
        worker = SteadyWorker(
            queue_names=queue_names, interval=interval, batch=batch,
            backend_name=backend_name, startup_delay=startup_delay, max_tasks=max_tasks,
            worker_id=worker_id, excluded_queue_names=excluded,
        )
        worker.configure_signals()
        worker.run()
