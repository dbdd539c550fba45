"""The desk's user search (issue 7 §1): find an account from what someone writing to support
knows — its username, one of its addresses, or how its username starts.

Read-only, and a fixed number of queries whatever the number of results: at most three
lookups, each served by an index, then the accounts with their counts in one query and their
addresses and open requests in one query each. With 1 M users:
- exact username: UPPER(username) = UPPER(q), index ``user_username_upper``;
- exact address: UPPER(address) = UPPER(q), index ``email_address_upper``;
- start of a username: a range of UPPER(username) in byte order, read in order from
  ``user_username_upper_bytes`` and stopped after the page's rows, so "use" costs 25 index
  entries even when a million usernames start with it (a LIKE would need them all to sort).
"""

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Any

from django.db.models import Exists, F, Func, IntegerField, OuterRef, Prefetch, QuerySet, Subquery
from django.db.models.functions import Upper

from relatch.accounts.byte_order import ByteOrder
from relatch.accounts.models import Email, User
from relatch.accounts.usernames import MAX_USERNAME_LENGTH
from relatch.index.models import Role
from relatch.mfa.models import RecoveryCode, RecoveryCodeSet, TotpDevice, WebAuthnCredential
from relatch.recovery.desk.queries import filed_requests
from relatch.recovery.models import OPEN_STATES, State

MAX_RESULTS = 25
MIN_PREFIX = 3
# The longest address (Email.address); no username is longer, so nothing longer can match.
MAX_SEARCH = 254
# What the search takes, for the page's field and the API's parameter alike.
SEARCH_HELP = ("An exact username or address (any case), or the first 3 or more characters "
               "of a username.")
# What a username may contain (accounts.usernames): a query with anything else names none.
USERNAME_CHARACTERS = re.compile(r"[A-Za-z0-9._-]+")


def has_control_characters(text: str) -> bool:
    """Whether ``text`` holds a control character, which no username or address does (and a
    NUL, which PostgreSQL refuses in a query: a 500)."""
    return any(unicodedata.category(char) == "Cc" for char in text)


class MatchedBy(IntEnum):
    """How a result matched, in the order results are listed."""

    USERNAME = 0
    ADDRESS = 1
    PREFIX = 2

    @property
    def description(self) -> str:
        return ("username", "address", "start of the username")[self]


@dataclass(frozen=True)
class Address:
    address: str
    verified: bool
    primary: bool


@dataclass(frozen=True)
class Factors:
    """The second factors and recovery codes in use: kinds and counts, never secrets."""

    authenticator_app: bool
    security_keys: int
    # Unused codes of the account's set, or None when it has no set.
    recovery_codes_left: int | None


@dataclass(frozen=True)
class OpenRequest:
    public_id: str
    state: str
    state_label: str
    created_at: datetime


@dataclass(frozen=True)
class AccountMatch:
    """One result: the account, how it matched, and what staff check first."""

    user: User
    matched_by: MatchedBy
    # The address that matched, for a match by address.
    matched_address: Address | None
    addresses: list[Address]
    factors: Factors
    owns: int
    maintains: int
    open_requests: list[OpenRequest]


def find_accounts(query: str) -> list[AccountMatch]:
    """The accounts ``query`` names, at most ``MAX_RESULTS``: the exact username, then the
    accounts with that exact address (verified or not), then usernames starting with it
    (``MIN_PREFIX`` characters or more) in username order. Case is ignored throughout."""
    query = query.strip()
    hits: dict[int, tuple[MatchedBy, Address | None]] = {}
    for user_id in _by_username(query):
        hits[user_id] = (MatchedBy.USERNAME, None)
    for user_id, address in _by_address(query):
        hits.setdefault(user_id, (MatchedBy.ADDRESS, address))
    for user_id in _by_prefix(query, exclude=list(hits), limit=MAX_RESULTS - len(hits)):
        hits[user_id] = (MatchedBy.PREFIX, None)
    matches = [_match(user, *hits[user.pk]) for user in _accounts(list(hits))]
    return sorted(matches, key=lambda m: (m.matched_by, m.user.username.upper(), m.user.pk))


def _is_username_like(query: str) -> bool:
    return len(query) <= MAX_USERNAME_LENGTH and USERNAME_CHARACTERS.fullmatch(query) is not None


def _by_username(query: str) -> list[int]:
    if not _is_username_like(query):
        return []
    return list(User.objects.filter(username__iexact=query).values_list("pk", flat=True)[:1])


def _by_address(query: str) -> list[tuple[int, Address]]:
    if "@" not in query:
        return []
    # An unverified address may sit on several accounts (a typo, a squatter): all are shown.
    rows = (Email.objects.filter(address__iexact=query).order_by("user_id")
            .values_list("user_id", "address", "verified", "primary")[:MAX_RESULTS])
    return [(user_id, Address(address, verified, primary))
            for user_id, address, verified, primary in rows]


def _by_prefix(query: str, *, exclude: list[int], limit: int) -> list[int]:
    if len(query) < MIN_PREFIX or limit <= 0 or not _is_username_like(query):
        return []
    start = query.upper()
    # The first string after every one starting with ``start``, in byte order. A range, not
    # LIKE: no wildcard in the query can widen it, and the index gives the rows in order.
    end = start[:-1] + chr(ord(start[-1]) + 1)
    rows = User.objects.alias(key=ByteOrder(Upper("username"))).filter(key__gte=start,
                                                                        key__lt=end)
    if exclude:
        rows = rows.exclude(pk__in=exclude)
    return list(rows.order_by("key").values_list("pk", flat=True)[:limit])


def _count(rows: QuerySet[Any]) -> Subquery:
    # COUNT without GROUP BY: one row per outer account, 0 when there is nothing to count.
    counted = rows.order_by().annotate(n=Func(F("pk"), function="COUNT")).values("n")
    return Subquery(counted, output_field=IntegerField())


def _accounts(ids: list[int]) -> list[User]:
    if not ids:
        return []
    mine = OuterRef("pk")
    open_requests = filed_requests().filter(state__in=OPEN_STATES).order_by("created_at", "id")
    return list(
        User.objects.filter(pk__in=ids)
        .annotate(
            owns=_count(Role.objects.filter(user=mine, kind=Role.Kind.OWNER)),
            maintains=_count(Role.objects.filter(user=mine, kind=Role.Kind.MAINTAINER)),
            keys=_count(WebAuthnCredential.objects.filter(user=mine)),
            has_app=Exists(TotpDevice.objects.filter(user=mine)),
            has_codes=Exists(RecoveryCodeSet.objects.filter(user=mine)),
            codes_left=_count(RecoveryCode.objects.filter(code_set__user=mine,
                                                          used_at__isnull=True)),
        )
        .prefetch_related(
            Prefetch("emails", queryset=Email.objects.order_by("-primary", "address"),
                     to_attr="listed_emails"),
            Prefetch("recovery_requests", queryset=open_requests, to_attr="open_requests"),
        )
    )


def _match(user: Any, matched_by: MatchedBy, address: Address | None) -> AccountMatch:
    return AccountMatch(
        user=user, matched_by=matched_by, matched_address=address,
        addresses=[Address(e.address, e.verified, e.primary) for e in user.listed_emails],
        factors=Factors(authenticator_app=user.has_app, security_keys=user.keys,
                        recovery_codes_left=user.codes_left if user.has_codes else None),
        owns=user.owns, maintains=user.maintains,
        open_requests=[OpenRequest(r.public_id, r.state, State(r.state).label, r.created_at)
                       for r in user.open_requests],
    )
