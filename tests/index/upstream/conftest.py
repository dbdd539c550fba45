from collections.abc import Iterator
from typing import Any

import pytest

from tests.index.upstream.fake_upstream import FakeUpstream
from tests.index.upstream.upstream_case import upstream_with_up_pkg


@pytest.fixture
def upstream(settings: Any) -> Iterator[FakeUpstream]:
    """A loopback upstream with up-pkg 1.0 (wheel, PEP 658 metadata) and a file without a
    hash, as Relatch's upstream."""
    yield from upstream_with_up_pkg(settings)
