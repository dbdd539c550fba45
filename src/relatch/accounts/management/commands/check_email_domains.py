"""``relatch check_email_domains [--domain NAME]``: look up the domains of verified addresses
over RDAP now, and unverify the addresses whose domain lapsed or was registered again."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from relatch.accounts.emails.domains.checks import run_domain_checks


class Command(BaseCommand):
    help = (
        "Look up the domains of verified addresses that are due (each at most once every 7 "
        "days; sooner after a failed lookup) over RDAP, and unverify the addresses whose "
        "domain lapsed or was registered again after they were verified. The worker does "
        "this once a day; large mail providers' domains are never looked up."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--domain", metavar="NAME",
                            help="look up this one domain now, even if it is not due")

    def handle(self, *args: Any, domain: str | None = None, **options: Any) -> None:
        report = run_domain_checks(only=domain)
        for result in report.results:
            self.stdout.write(result.line())
        if domain is None:
            self.stdout.write(report.closing_line())
