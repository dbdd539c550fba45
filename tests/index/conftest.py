"""Fixtures shared by the index tests."""

from pathlib import Path

import pytest

from relatch.index.simple.response_cache import ResponseCache, ResponseStore
from relatch.wsgi import application
from tests.index.wsgi_calls import Counted, FakeClock


@pytest.fixture(autouse=True)
def files_dir(files_dir: Path) -> Path:
    """Every index test keeps its uploaded files in a fresh directory of its own."""
    return files_dir


@pytest.fixture
def django_part() -> Counted:
    """Django's part of ``relatch.wsgi.application``, counting the requests that reach it."""
    return Counted(application.app)


@pytest.fixture
def store() -> ResponseStore:
    return ResponseStore()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def app(django_part: Counted, store: ResponseStore, clock: FakeClock) -> ResponseCache:
    """The kept-responses layer over ``django_part``, with the index's own change stamp (the
    services rewrite it) and a clock the test moves."""
    return ResponseCache(django_part, store, clock=clock)
