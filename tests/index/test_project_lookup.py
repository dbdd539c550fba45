"""A project name as someone types it finds the project by its PEP 503 name: one rule for the
desk's form, the JSON API and the manage pages (issue 16 point 3)."""

import pytest

from relatch.index.models import Project
from relatch.index.queries import find_project_by_typed_name

pytestmark = pytest.mark.django_db


@pytest.fixture
def spam_eggs() -> Project:
    return Project.objects.create(name="spam-eggs", normalized_name="spam-eggs")


@pytest.mark.parametrize("typed", ["spam-eggs", "Spam_Eggs", "SPAM.EGGS", " spam__eggs ",
                                   "spam-._eggs"])
def test_any_spelling_of_the_name_finds_the_project(spam_eggs: Project, typed: str) -> None:
    assert find_project_by_typed_name(typed) == spam_eggs


@pytest.mark.parametrize("typed", ["", "   ", "spam-egg", "spameggs", "spam-eggs\x00",
                                   "s" * 201])
def test_other_names_find_nothing(spam_eggs: Project, typed: str) -> None:
    assert find_project_by_typed_name(typed) is None
