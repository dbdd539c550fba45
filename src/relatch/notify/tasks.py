"""Background tasks of the notify app."""

from django.tasks import task

from relatch.notify.services import deliver


@task()
def deliver_email(outgoing_id: int) -> str:
    """Deliver one queued message (retries are scheduled by ``deliver`` itself)."""
    return str(deliver(outgoing_id=outgoing_id))
