"""PEP 503 normalisation and PEP 508 project names."""

import pytest

from relatch.index.names import is_valid_project_name, normalize_project_name


@pytest.mark.parametrize(
    ("name", "normalized"),
    [
        ("Django", "django"),
        ("friendly_bard", "friendly-bard"),
        ("Friendly.-_Bard", "friendly-bard"),
        ("a..b__c--d", "a-b-c-d"),
    ],
)
def test_names_normalise_as_pep_503_says(name, normalized):
    assert normalize_project_name(name) == normalized


@pytest.mark.parametrize(
    ("name", "valid"),
    [("relatch", True), ("a", True), ("zope.interface", True), ("-bad", False),
     ("bad-", False), ("has space", False), ("", False), ("ü-nicode", False), ("a" * 201, False)],
)
def test_project_names_follow_pep_508(name, valid):
    assert is_valid_project_name(name) is valid
