"""The daily orphan sweep as a background task, queued by the recovery tick (the one periodic
task: ``relatch.recovery.tasks``), which asks for it every ten minutes; it runs a day after
the previous one was queued. ``relatch sweep_orphan_files`` runs one by hand. The same task
removes the temporary files killed uploads left (``relatch.index.upload.temp_files``) and the
records of OIDC tokens that can no longer verify (``relatch.index.trusted.used_tokens``)."""

from dataclasses import asdict
from datetime import timedelta
from typing import Any

from django.tasks import task
from django.utils import timezone

from relatch.index.trusted.used_tokens import prune_used_tokens
from relatch.index.upload.sweep import DEFAULT_MIN_AGE, added, sweep_orphan_files
from relatch.index.upload.temp_files import LEFTOVER_AGE, remove_upload_leftovers
from relatch.index.upstream.sweep import sweep_upstream_orphans

SWEEP_EVERY = timedelta(days=1)


@task()
def sweep_orphans() -> dict[str, Any]:
    """One sweep of ``packages/`` and ``upstream/`` with the default age limit, and the
    removal of uploads' temporary files older than LEFTOVER_AGE; their counts go into the
    task's result row."""
    report = asdict(added(sweep_orphan_files(older_than=DEFAULT_MIN_AGE, dry_run=False),
                          sweep_upstream_orphans(older_than=DEFAULT_MIN_AGE, dry_run=False)))
    leftovers = remove_upload_leftovers(older_than=LEFTOVER_AGE)
    report.update(upload_leftovers=leftovers.files, upload_leftover_bytes=leftovers.bytes)
    report["used_oidc_tokens_pruned"] = prune_used_tokens()
    return report


def ensure_sweep_scheduled() -> bool:
    """Queue a sweep SWEEP_EVERY from now unless one is already waiting (so at most one a
    day); return whether one was queued. Safe to call any number of times."""
    from django.tasks import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    waiting = DBTaskResult.objects.filter(
        task_path=sweep_orphans.module_path, status=TaskResultStatus.READY
    ).exists()
    if waiting:
        return False
    sweep_orphans.using(run_after=timezone.now() + SWEEP_EVERY).enqueue()
    return True
