"""Fixtures shared by the index tests."""

from pathlib import Path
from typing import Any

import pytest

from relatch.accounts.models import User
from relatch.index.simple.response_cache import ResponseCache, ResponseStore
from relatch.wsgi import application
from tests.conftest import CommittingClient, sign_in
from tests.index.simple_rows import own_sample_pkg
from tests.index.wsgi_calls import Counted, FakeClock
from tests.mfa.factor_rows import add_app


@pytest.fixture(autouse=True)
def files_dir(files_dir: Path) -> Path:
    """Every index test keeps its uploaded files in a fresh directory of its own."""
    return files_dir


@pytest.fixture
def owner(user: User) -> User:
    """alice, owner of sample-pkg 1.0 and 1.1."""
    return own_sample_pkg(user)


@pytest.fixture
def alice(user: User) -> User:
    """alice with an authenticator app: managing projects needs two-step sign-in. (The upload
    tests use alice without one: ``token_for`` gives her one.)"""
    add_app(user)
    return user


@pytest.fixture
def bob(make_user: Any) -> User:
    """bob, with an authenticator app too."""
    bob = make_user(username="bob", email="bob@example.org")
    add_app(bob)
    return bob


@pytest.fixture
def as_alice(client: CommittingClient, alice: User) -> CommittingClient:
    return sign_in(client, alice)


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
