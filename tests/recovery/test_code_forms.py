"""The 6-digit code fields take ASCII digits only: ``\\d`` would also take Arabic-Indic or
full-width digits, which no mail we send contains (found by the hypothesis tests' review)."""

import pytest

from relatch.recovery.proofs.forms import CodeForm
from relatch.recovery.requester.forms import ContactCodeForm


@pytest.mark.parametrize("form_class", [CodeForm, ContactCodeForm])
@pytest.mark.parametrize(("code", "valid"), [
    ("123456", True),
    (" 123456 ", True),
    ("١٢٣٤٥٦", False),
    ("１２３４５６", False),
    ("12345", False),
])
def test_a_code_field_takes_six_ascii_digits(form_class: type, code: str, valid: bool) -> None:
    assert form_class({"code": code}).is_valid() is valid
