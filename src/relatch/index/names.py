"""Project names: which are valid, and how PEP 503 normalises them."""

import re

# PEP 508 names: ASCII letters and digits, with ".", "_" and "-" inside. re.ASCII matters:
# with only IGNORECASE, Unicode case folding lets "ſ" (long s), "ı" (dotless i) and the Kelvin
# sign "K" match [A-Z], so "ſetuptools" was a valid name that looks like "setuptools" and that
# packaging (and so every installer) refuses.
_VALID_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE | re.ASCII)
_SEPARATORS = re.compile(r"[-_.]+")
MAX_PROJECT_NAME = 200


def normalize_project_name(name: str) -> str:
    """PEP 503: lowercase, and every run of "-", "_" and "." becomes one "-"."""
    return _SEPARATORS.sub("-", name).lower()


def is_valid_project_name(name: str) -> bool:
    return len(name) <= MAX_PROJECT_NAME and bool(_VALID_NAME.fullmatch(name))
