"""Fixtures shared by the recovery tests: staff members, and the desk signed in as one."""

from typing import Any

import pytest
from django.test import Client

from relatch.accounts.models import User
from tests.conftest import sign_in
from tests.mfa.factor_rows import add_app


@pytest.fixture
def make_staff(make_user: Any) -> Any:
    """Factory: a staff member (dana unless named) with an authenticator app, as the desk
    requires, or without one (``second_factor=False``)."""

    def factory(username: str = "dana", *, second_factor: bool = True) -> User:
        staff = make_user(username=username, is_staff=True)
        if second_factor:
            add_app(staff)
        return staff

    return factory


@pytest.fixture
def staff(make_user: Any) -> User:
    """dana, a staff member (no second factor: the services do not ask, the desk's pages do)."""
    return make_user(username="dana", is_staff=True)


@pytest.fixture
def desk(client: Client, make_staff: Any) -> Client:
    """A browser signed in to the desk as dana, who has a second factor."""
    return sign_in(client, make_staff())
