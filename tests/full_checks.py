"""The long form of the hostile-input and timing checks, run by hand with RELATCH_FULL_CHECKS=1;
CI runs the short form (issue 7: "a minute or two in CI, in full by hand")."""

import os

from hypothesis import settings

FULL = os.environ.get("RELATCH_FULL_CHECKS") == "1"


def property_settings(*, short: int, full: int = 5000) -> settings:
    """Hypothesis settings: ``short`` examples per property in CI, ``full`` by hand; no deadline
    (a loaded CI machine is slow, not wrong) and no example database on disk."""
    return settings(max_examples=full if FULL else short, deadline=None, database=None)
