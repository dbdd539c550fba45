"""Fixtures shared by the index tests."""

from pathlib import Path
from typing import Any

import pytest

from tests.index.simple_rows import use_tmp_storage


@pytest.fixture(autouse=True)
def files_dir(settings: Any, tmp_path: Path) -> Path:
    """Every index test keeps its uploaded files in a fresh directory of its own."""
    location = tmp_path / "files"
    use_tmp_storage(settings, location)
    return location
