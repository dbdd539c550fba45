"""``relatch mail_queue``: the mail queue in numbers, as Prometheus text (issue 18 §2).

For a node exporter's text-file collector or a cron check: a given-up count above zero, or an
oldest undelivered message hours old, means security mail is not reaching people."""

from typing import Any

from django.core.management.base import BaseCommand

from relatch.notify.queries import mail_backlog

_HELP = {
    "relatch_mail_undelivered": "Messages not yet accepted by the mail server.",
    "relatch_mail_retrying": "Undelivered messages that failed at least once.",
    "relatch_mail_given_up": "Messages given up after failing for their whole retry time.",
    "relatch_mail_oldest_undelivered_age_seconds": "Age of the oldest undelivered message.",
}


class Command(BaseCommand):
    help = "Print the mail queue's counts (undelivered, retrying, given up) as Prometheus text."

    def handle(self, *args: Any, **options: Any) -> None:
        for name, value in mail_backlog().as_metrics().items():
            self.stdout.write(f"# HELP {name} {_HELP[name]}\n# TYPE {name} gauge\n"
                              f"{name} {value:g}")
