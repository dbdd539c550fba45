"""The audit itself can fail: a page with a serious axe violation, or one that scrolls sideways
on a phone, is refused (else every browser test would pass for the wrong reason)."""

import pytest
from tests.browser.harness import Visitor

UNLABELLED_FIELD = "<!doctype html><html lang=en><title>t</title><main><h1>t</h1><input></main>"
TOO_WIDE = ("<!doctype html><html lang=en><title>t</title><main><h1>t</h1>"
            "<div style='width:1000px'>wide</div></main>")


@pytest.mark.parametrize(("html", "complaint"), [
    (UNLABELLED_FIELD, "label"),
    (TOO_WIDE, "scrolls sideways"),
])
def test_the_audit_refuses_a_bad_page(visitor: Visitor, html: str, complaint: str) -> None:
    visitor.page.set_content(html)
    with pytest.raises(AssertionError, match=complaint):
        visitor.audit()
    visitor.audited.add(len(visitor.loads))  # refused on purpose: not an unaudited page


def test_a_page_of_relatch_passes_the_audit(visitor: Visitor) -> None:
    visitor.goto("/account/login/")
    visitor.see("Sign in")
    assert visitor.audited == {len(visitor.loads)}
