"""The apps import one way (issue 16; docs/architecture.md).

Lowest first: an app may import the apps before it in ORDER, never one after it, not even
inside a function. A cycle between apps is how the code base was tangled before: a change
low in the stack could not be understood without the apps above it. The project's top-level
modules (settings, urls, wsgi, cli) wire everything together and may import any app.
"""

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "relatch"
ORDER = ["web", "notify", "audit", "accounts", "mfa", "signin", "index", "recovery", "api", "ops"]
# Packages that wire apps together like cli.py, not apps: ``relatch backup`` and ``restore``.
TOP_LEVEL = {"backup"}


def _apps() -> set[str]:
    return {p.name for p in SRC.iterdir() if (p / "__init__.py").exists()} - TOP_LEVEL


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """Every ``relatch.<app>`` module ``path`` imports, wherever the import statement is."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "relatch" and len(parts) > 1:
                yield node.lineno, parts[1]


def upward_imports() -> list[str]:
    """"file:line imports app" for each import of an app above the importing one."""
    rank = {app: i for i, app in enumerate(ORDER)}
    found = []
    for path in sorted(SRC.rglob("*.py")):
        app = path.relative_to(SRC).parts[0]
        if app not in rank:
            continue  # a top-level module (settings, urls, wsgi, cli)
        for line, target in _imports(path):
            if target in rank and rank[target] > rank[app]:
                found.append(f"{path.relative_to(SRC.parent)}:{line} imports relatch.{target}")
    return found


def test_every_app_has_its_place_in_the_order() -> None:
    assert _apps() == set(ORDER), "add the new app to ORDER (and to docs/architecture.md)"


def test_no_app_imports_an_app_above_it() -> None:
    assert upward_imports() == []


@pytest.mark.parametrize(("source", "found"), [
    ("from relatch.index.models import Role\n", ["index"]),
    ("def f():\n    import relatch.recovery.policy\n", ["recovery"]),
    ("from . import models\nfrom django.db import models\n", []),
])
def test_the_check_sees_imports_wherever_they_are(tmp_path: Path, source: str,
                                                   found: list[str]) -> None:
    """The check cannot pass by looking away: imports inside functions count."""
    module = tmp_path / "m.py"
    module.write_text(source)
    assert [target for _, target in _imports(module)] == found
