"""Fixtures shared by the index tests."""

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def files_dir(files_dir: Path) -> Path:
    """Every index test keeps its uploaded files in a fresh directory of its own."""
    return files_dir
