"""The desk's queue is read a page at a time, so it stays fast with 100 k requests (issue 7 §4):
each page is one keyset query, a "newer requests" link leads on with the same filters, and
no request is skipped or shown twice."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from relatch.recovery.desk import queries
from relatch.recovery.models import RecoveryMessage, RecoveryRequest, State
from tests.recovery.requests import make_request

pytestmark = pytest.mark.django_db

NEXT_LINK = re.compile(r'<a rel="next" href="\?([^"]+)">Newer requests</a>')


@pytest.fixture
def small_pages(monkeypatch):
    monkeypatch.setattr(queries, "QUEUE_PAGE", 2)


def filed(make_user, count, *, same_time=False, prefix="owner", **extra):
    """``count`` requests, oldest first; with ``same_time`` all share one created_at."""
    start = timezone.now() - timedelta(days=count)
    made = []
    for n in range(count):
        recovery = make_request(make_user(username=f"{prefix}{n}"), **extra)
        at = start if same_time else start + timedelta(days=n)
        RecoveryRequest.objects.filter(pk=recovery.pk).update(created_at=at)
        made.append(recovery.public_id)
    return made


def walk(desk, query):
    """Every page from ``query`` on, following the "Newer requests" links."""
    pages = []
    while True:
        response = desk.get("/desk/?" + query)
        assert response.status_code == 200
        pages.append([row.public_id for row in response.context["rows"]])
        link = NEXT_LINK.search(response.content.decode())
        if link is None:
            return pages
        query = link.group(1).replace("&amp;", "&")


def test_the_queue_pages_through_every_open_request_once_oldest_first(
    desk, make_user, small_pages
):
    expected = filed(make_user, 5)
    make_request(make_user(username="closed"), state=State.DENIED)  # not in the open queue

    assert walk(desk, "") == [expected[0:2], expected[2:4], expected[4:5]]


def test_requests_filed_at_the_same_instant_are_neither_skipped_nor_repeated(
    desk, make_user, small_pages
):
    expected = sorted(filed(make_user, 5, same_time=True),
                      key=lambda public_id: RecoveryRequest.objects.get(public_id=public_id).pk)

    pages = walk(desk, "")
    assert [public_id for page in pages for public_id in page] == expected


def test_the_next_page_keeps_the_filters(desk, make_user, small_pages):
    waiting = filed(make_user, 3, state=State.AWAITING_PROOF)
    filed(make_user, 2, prefix="other")  # submitted: filtered out

    assert walk(desk, "state=awaiting_proof") == [waiting[0:2], waiting[2:3]]


def test_a_page_is_one_query_however_long_the_queue(make_user, django_assert_num_queries):
    filed(make_user, 8)
    for recovery in RecoveryRequest.objects.all():
        RecoveryMessage.objects.create(request=recovery, author="staff", body="hello")
    first = queries.queue(limit=3)
    with django_assert_num_queries(1):
        rows = queries.queue(after=first[-1].public_id, limit=3)
    assert len(rows) == 3
    assert all(row.first_answer_at is not None for row in rows)


def test_an_unknown_starting_point_shows_no_rows_instead_of_an_error(desk, make_user):
    filed(make_user, 2)
    response = desk.get("/desk/?after=nonexistent")
    assert response.status_code == 200
    assert response.context["rows"] == []
    assert "No request matches." in response.content.decode()
