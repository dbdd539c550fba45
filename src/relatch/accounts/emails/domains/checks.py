"""The domain check: look up the domains of verified addresses over RDAP, and take back the
verification of addresses whose domain lapsed or was registered again since (issue 17).

A pass (daily, from the worker; or ``relatch check_email_domains``):

1. reads the domains of every verified address, leaves out those never looked up
   (``providers``), keeps one EmailDomain row for each of the others and drops the rows of
   domains no verified address uses any more;
2. looks up each domain that is due (``next_check_at``): at most once every CHECK_EVERY, and
   after a failed lookup again FIRST_RETRY later, doubling with each failure in a row, never
   later than CHECK_EVERY;
3. stores what the registry said on the row, and unverifies (``trust.unverify_address``) every
   verified address at that domain whose domain lapsed (a status of LAPSED, or an expiration
   date in the past) or was registered after the address was verified (a resurrection).

A lookup that fails (timeout, 429, 5xx, a TLD without RDAP, an answer that is not RDAP or is
about another domain) changes nothing but the row's failure count and retry time, and is
logged. Nothing here runs in a web request.
"""

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from relatch.accounts.emails.domains.providers import never_looked_up
from relatch.accounts.emails.domains.rdap import DomainRecord, RdapClient, RdapError
from relatch.accounts.emails.trust import unverify_address
from relatch.accounts.models import Email, EmailDomain

logger = logging.getLogger(__name__)

CHECK_EVERY = timedelta(days=7)
FIRST_RETRY = timedelta(hours=1)
# Lookups in one pass; the domains left over are the most overdue of the next pass.
MAX_LOOKUPS_PER_PASS = 2000
_CHUNK = 500

# Statuses (RFC 8056's mapping of EPP statuses to RDAP, and RFC 9083 §4.6) that mean the
# registration is gone or going: whoever registers the domain next receives its mail.
# The hold statuses ("client hold", "server hold") are left out: registrars use them for
# abuse and unanswered contact checks too, and a lapse they mark shows up as one of these,
# or as an expiration date in the past, soon enough.
LAPSED: dict[str, str] = {
    "redemption period": "its registration was deleted, and anyone may register it once "
                         "the few weeks to restore it are over",
    "pending delete": "it is about to be deleted, after which anyone may register it",
    "pending restore": "its registration was deleted and is being restored",
    "inactive": "it is not in use (it has no name servers), so it receives no mail",
}


@dataclass
class DomainResult:
    """What a pass did with one domain, for the command's output and the logs."""

    name: str
    outcome: str  # "checked", "failed" or "skipped"
    detail: str
    unverified: list[str] = field(default_factory=list)

    def line(self) -> str:
        text = f"{self.name}: {self.outcome} — {self.detail}"
        if self.unverified:
            text += f"; unverified {len(self.unverified)}: {', '.join(self.unverified)}"
        return text


@dataclass
class CheckReport:
    results: list[DomainResult] = field(default_factory=list)
    not_due: int = 0  # domains in use whose next check is later
    not_looked_up: int = 0  # domains of verified addresses the check leaves alone

    def count(self, outcome: str) -> int:
        return sum(1 for r in self.results if r.outcome == outcome)

    @property
    def unverified(self) -> int:
        return sum(len(r.unverified) for r in self.results)

    def summary(self) -> dict[str, Any]:
        """Counts only (no address): the background task's result row."""
        return {"checked": self.count("checked"), "failed": self.count("failed"),
                "unverified": self.unverified, "not_due": self.not_due,
                "not_looked_up": self.not_looked_up}

    def closing_line(self) -> str:
        return (f"Checked {self.count('checked')} domains, {self.count('failed')} failed "
                f"(retried later); unverified {self.unverified} addresses. "
                f"{self.not_due} domains not due yet; {self.not_looked_up} never looked up "
                "(large mail providers, special-use names).")


def domain_of(address: str) -> str:
    """The domain of an address as the check names it: lower case, no final dot."""
    return address.rpartition("@")[2].strip().rstrip(".").lower()


def retry_delay(failures: int) -> timedelta:
    """After ``failures`` failed lookups in a row: 1 h, 2 h, 4 h … at most CHECK_EVERY."""
    if failures < 1:
        return CHECK_EVERY
    return min(FIRST_RETRY * 2 ** min(failures - 1, 20), CHECK_EVERY)


def _day(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d}"


def why_untrusted(record: DomainRecord, *, verified_at: datetime | None, now: datetime) -> str:
    """Why an address verified at ``verified_at`` on the domain of ``record`` is no longer
    trusted, in words for its owner; "" when it still is."""
    name = record.name
    for status in record.statuses:
        if status in LAPSED:
            return f"its domain {name} is listed by its registry as \u201c{status}\u201d: " \
                   f"{LAPSED[status]}"
    if record.expires_at is not None and record.expires_at <= now:
        return (f"the registration of its domain {name} expired on {_day(record.expires_at)}, "
                "so whoever registers the domain next would receive its mail")
    if (record.registered_at is not None and verified_at is not None
            and record.registered_at > verified_at):
        return (f"its domain {name} was registered again on {_day(record.registered_at)}, "
                f"after the address was verified on {_day(verified_at)}: the domain may "
                "belong to someone else now, who would receive its mail")
    return ""


def domains_in_use() -> tuple[dict[str, list[int]], int]:
    """Each domain to look up, with the ids of the verified addresses on it; and how many
    domains of verified addresses are never looked up."""
    in_use: dict[str, list[int]] = defaultdict(list)
    left_alone: set[str] = set()
    rows = Email.objects.filter(verified=True).values_list("pk", "address")
    for pk, address in rows.iterator(chunk_size=5000):
        domain = domain_of(address)
        if never_looked_up(domain):
            left_alone.add(domain)
        else:
            in_use[domain].append(pk)
    return dict(in_use), len(left_alone)


def _chunks[T](items: list[T], size: int = _CHUNK) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def sync_domain_rows(names: Iterable[str], *, now: datetime) -> None:
    """One EmailDomain row for each name (new ones due at ``now``); rows of other names go."""
    wanted = set(names)
    known = dict(EmailDomain.objects.values_list("name", "pk"))
    EmailDomain.objects.bulk_create(
        [EmailDomain(name=name, next_check_at=now) for name in sorted(wanted - known.keys())],
        batch_size=_CHUNK, ignore_conflicts=True)
    stale = [pk for name, pk in known.items() if name not in wanted]
    for chunk in _chunks(stale):
        EmailDomain.objects.filter(pk__in=chunk).delete()


def run_domain_checks(*, now: datetime | None = None, only: str | None = None,
                      client: RdapClient | None = None,
                      limit: int = MAX_LOOKUPS_PER_PASS) -> CheckReport:
    """One pass over the domains that are due (``now`` is the pass's time), or over the one
    domain ``only`` whatever its next check time (``relatch check_email_domains --domain``)."""
    now = now or timezone.now()
    in_use, left_alone = domains_in_use()
    report = CheckReport(not_looked_up=left_alone)
    sync_domain_rows(in_use, now=now)
    if only is not None:
        name = domain_of("@" + only)
        if never_looked_up(name):
            report.results.append(DomainResult(
                name, "skipped", "never looked up (a large mail provider's domain, a "
                "special-use name or not a domain name)"))
            return report
        if name not in in_use:
            report.results.append(DomainResult(name, "skipped", "no verified address uses it"))
            return report
        due = list(EmailDomain.objects.filter(name=name))
    else:
        due = list(EmailDomain.objects.filter(next_check_at__lte=now)
                   .order_by("next_check_at", "pk")[:limit])
        report.not_due = max(0, len(in_use) - len(due))
    if not due:
        return report
    with client or RdapClient() as rdap:
        for row in due:
            result = check_domain(row, address_ids=in_use.get(row.name, []), client=rdap,
                                  now=now)
            report.results.append(result)
    return report


def check_domain(row: EmailDomain, *, address_ids: list[int], client: RdapClient,
                 now: datetime) -> DomainResult:
    """Look ``row``'s domain up; store what its registry says and unverify the addresses that
    are no longer their owners' (or, on failure, count it and set the retry)."""
    try:
        record = client.lookup(row.name, now=now)
    except RdapError as exc:
        return _failed(row, exc, now=now)
    with transaction.atomic():
        EmailDomain.objects.filter(pk=row.pk).update(
            checked_at=now, next_check_at=now + CHECK_EVERY, failures=0, last_error="",
            statuses=list(record.statuses), registered_at=record.registered_at,
            expires_at=record.expires_at)
        unverified, reasons = [], []
        for chunk in _chunks(address_ids):
            for email in Email.objects.select_related("user").filter(pk__in=chunk,
                                                                      verified=True):
                reason = why_untrusted(record, verified_at=email.verified_at, now=now)
                if reason and unverify_address(email=email, reason=reason):
                    unverified.append(email.address)
                    reasons.append(reason)
    if unverified:
        logger.warning("email domain %s: unverified %d address(es): %s", row.name,
                       len(unverified), reasons[0])
    return DomainResult(row.name, "checked", _described(record, asked=row.name), unverified)


def _failed(row: EmailDomain, exc: RdapError, *, now: datetime) -> DomainResult:
    failures = row.failures + 1
    delay = retry_delay(failures)
    if exc.retry_after:
        delay = max(delay, min(timedelta(seconds=exc.retry_after), CHECK_EVERY))
    retry_at = now + delay
    error = f"{type(exc).__name__}: {exc}"[:300]
    EmailDomain.objects.filter(pk=row.pk).update(failures=failures, last_error=error,
                                                  next_check_at=retry_at)
    logger.warning("RDAP lookup of %s failed (%d in a row; next try %s): %s", row.name,
                   failures, retry_at.isoformat(timespec="minutes"), error)
    return DomainResult(row.name, "failed",
                        f"{error}; nothing changed, next try {_minute(retry_at)}")


def _minute(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _described(record: DomainRecord, *, asked: str) -> str:
    parts = [f"status {', '.join(record.statuses) or '(none)'}"]
    if record.registered_at:
        parts.append(f"registered {_day(record.registered_at)}")
    if record.expires_at:
        parts.append(f"expires {_day(record.expires_at)}")
    held_by = f" (the record of {record.name})" if record.name != asked else ""
    return "; ".join(parts) + held_by
