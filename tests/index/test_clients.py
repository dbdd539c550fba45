"""Real installers against a running Relatch through ONE index URL (issue 20, "Done when"):
pip 23.0.1 (from ``python3.10 -m venv``), the newest pip, uv and poetry each install an sdist
whose build backend comes from the index, and the wheels it depends on, in a fresh environment,
and the installed code runs.

The build backend lives only on an upstream Relatch (RELATCH_UPSTREAM) behind the index, as
setuptools lives on PyPI; each ``Setup`` serves the same files one way (public, and
RELATCH_READ_ACCESS=authenticated with a read token), started once for all its cases.
"""

import json
import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.index import clients
from tests.index.client_dists import ANSWER, Dist, chain, write
from tests.index.clients import Access
from tests.index.read_tokens import server_read_token
from tests.serving import Server, running_server

pytestmark = [pytest.mark.slow, pytest.mark.own_database]

WANTED = "from-source"  # an sdist: building it needs tiny-backend; it needs chain-top → chain-base
# What pip 22.3 to 23.1 send for a project page (pip/_internal/index/collector.py): they take
# JSON and crashed on its pre-PEP 714 "dist-info-metadata" key.
PIP_23_ACCEPT = ("application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; "
                 "q=0.1, text/html; q=0.01")


def load(server: Server, dists: list[Dist], work: Path) -> None:
    """``dists`` published on ``server`` by an operator's ``index_import_file``, with the
    account it needs made in the same Django start-up (each one costs seconds)."""
    paths = [str(path) for path in write(dists, work)]
    done = server.relatch("shell", "-c", (
        "from django.core.management import call_command\n"
        "from relatch.accounts.provisioning import create_verified_user\n"
        "create_verified_user(username='maria', email='maria@example.org', password=None)\n"
        f"call_command('index_import_file', *{paths!r}, owner='maria')\n"))
    assert done.returncode == 0, done.stdout + done.stderr
    imported = [line for line in done.stdout.splitlines() if line.startswith("imported ")]
    assert len(imported) == len(dists), done.stdout


@contextmanager
def backend_upstream(tmp: Path) -> Iterator[str]:
    """A second Relatch holding only tiny-backend: the upstream (RELATCH_UPSTREAM) of the index
    the clients use, as PyPI would be for setuptools."""
    (tmp / "upstream").mkdir(exist_ok=True)
    (tmp / "index").mkdir(exist_ok=True)
    with running_server(tmp / "upstream") as upstream:
        load(upstream, chain()[:1], tmp / "upstream-dists")
        yield f"{upstream.url}/simple/"


@contextmanager
def backend_from_upstream(tmp: Path) -> Iterator[Access]:
    """The chain on the index, its build backend only on the upstream behind it."""
    with backend_upstream(tmp) as upstream, running_server(
        tmp / "index", RELATCH_UPSTREAM=upstream
    ) as server:
        load(server, chain()[1:], tmp / "dists")
        yield Access(f"{server.url}/simple/")


@contextmanager
def authenticated_with_upstream(tmp: Path) -> Iterator[Access]:
    """The same, with RELATCH_READ_ACCESS=authenticated: every client sends a read token, and
    without one the index answers 401 (upstream pages included)."""
    with backend_upstream(tmp) as upstream, running_server(
        tmp / "index", RELATCH_UPSTREAM=upstream, RELATCH_READ_ACCESS="authenticated"
    ) as server:
        load(server, chain()[1:], tmp / "dists")
        for page in ("/simple/chain-top/", "/simple/tiny-backend/"):
            status, _body, headers = server.get(page)
            assert status == 401 and headers.get("WWW-Authenticate", "").startswith("Basic")
        yield Access(f"{server.url}/simple/", token=server_read_token(server, "maria"))


@dataclass(frozen=True)
class Setup:
    """A way to serve the index: ``start(tmp)`` runs it and yields how clients reach it."""

    id: str
    start: Callable[[Path], AbstractContextManager[Access]]


SETUPS = [Setup("backend-upstream", backend_from_upstream),
          Setup("authenticated", authenticated_with_upstream)]


@pytest.fixture(scope="module", params=SETUPS, ids=lambda setup: setup.id)
def access(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Access]:
    with request.param.start(tmp_path_factory.mktemp(request.param.id)) as reached:
        yield reached


def answer(python: Path) -> str:
    """What the installed from-source says when it runs (it imports the whole chain)."""
    command: list[str | Path] = [python, "-c", "import from_source; print(from_source.answer())"]
    return clients.run(command, clients.client_env(python.parent / "home")).stdout.strip()


def installed(python: Path) -> dict[str, str]:
    """Distribution name → version in ``python``'s environment."""
    code = ("import json, importlib.metadata as m; "
            "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))")
    listing = clients.run([python, "-c", code], clients.client_env(python.parent / "home"))
    return dict(json.loads(listing.stdout))


def assert_chain_works(python: Path) -> None:
    assert answer(python) == ANSWER
    got = installed(python)
    assert {name: got.get(name) for name in ("from-source", "chain-top", "chain-base")} == {
        "from-source": "1.0", "chain-top": "1.0", "chain-base": "1.0"}
    assert "tiny-backend" not in got  # a build requirement only: it stayed in the build env


def test_pip_23_0_1_is_given_json_it_can_read(access: Access) -> None:
    """The page pip 23.0.1 asks for is JSON, and none of its files carries the old key."""
    content_type, body = access.get("chain-top/", PIP_23_ACCEPT)
    assert content_type == "application/vnd.pypi.simple.v1+json"
    [file] = json.loads(body)["files"]
    assert file["filename"] == "chain_top-1.0-py3-none-any.whl"
    assert "dist-info-metadata" not in file
    assert set(file["core-metadata"]) == {"sha256"}


@pytest.fixture(scope="module")
def python310_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``python3.10 -m venv`` made once (ensurepip takes seconds); each case installs into a
    copy of it, so no setup sees another's packages."""
    python310 = clients.python310()
    if python310 is None:
        pytest.skip("no Python 3.10 (pyenv install 3.10.13): pip 23.0.1 comes with its venv")
    return clients.venv(tmp_path_factory.mktemp("py310") / "venv", python310, with_pip=True)


def test_pip_23_0_1_from_python_3_10_venv_installs(access: Access, python310_venv: Path,
                                                   tmp_path: Path) -> None:
    # A venv copied whole is still one (bin/python and pyvenv.cfg point at the base Python);
    # only the console scripts' #! lines name the original, and pip runs as `python -m pip`.
    shutil.copytree(python310_venv.parent.parent, tmp_path / "venv", symlinks=True)
    python = tmp_path / "venv" / "bin" / "python"
    env = clients.client_env(tmp_path / "home")
    pip: list[str | Path] = [python, "-m", "pip"]
    assert clients.pip_version(pip, env) == "23.0.1"
    clients.pip_install(pip, access, env, WANTED)
    assert_chain_works(python)


def test_newest_pip_installs(access: Access, tmp_path: Path) -> None:
    assert clients.NEWEST_PIP.exists(), "./dev test installs the newest pip in .cache/clients/"
    python = clients.venv(tmp_path / "venv", with_pip=False)
    env = clients.client_env(tmp_path / "home")
    pip: list[str | Path] = [clients.NEWEST_PIP, "-m", "pip", "--python", python]  # its own venv
    assert clients.pip_version(pip, env) == read_stamp("pip")
    clients.pip_install(pip, access, env, WANTED)
    assert_chain_works(python)


def test_uv_installs(access: Access, tmp_path: Path) -> None:
    python = clients.venv(tmp_path / "venv", with_pip=False)
    clients.uv_install(python, access, clients.client_env(tmp_path / "home"), WANTED)
    assert_chain_works(python)


def test_poetry_locks_and_installs(access: Access, tmp_path: Path) -> None:
    assert clients.POETRY.exists(), "./dev test installs poetry in .cache/clients/"
    env = clients.poetry_env(tmp_path / "home", access)
    version = clients.run([clients.POETRY, "--version"], env).stdout
    assert version.split()[-1].rstrip(")") == read_stamp("poetry")
    project = clients.poetry_project(tmp_path / "project", access, WANTED)
    python = clients.poetry_install(project, env)
    lock = (project / "poetry.lock").read_text()
    assert '[package.source]\ntype = "legacy"\nurl = "' + access.url.rstrip("/") in lock
    assert_chain_works(python)


def read_stamp(client: str) -> str:
    """The version ./dev pinned for a client in .cache/clients/."""
    return (clients.CACHED_CLIENTS / client / ".relatch-version").read_text().strip()

