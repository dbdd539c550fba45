"""The whole publishing journey against a running server (issue 4, "How it will be checked"):
a maintainer with a second factor and a token uploads with real twine; real pip and uv install
from --index-url in fresh virtual environments; a second version, a yank and a deletion follow,
each seen by the installers."""

import subprocess
from pathlib import Path

import pytest

from tests.index.dists import build_sdist, build_wheel
from tests.index.test_install import UV, _isolated_env, _venv
from tests.index.test_twine import SETUP, Index, said
from tests.serving import running_server

pytestmark = [pytest.mark.slow, pytest.mark.own_database]

# Owner actions through the same services the management pages call.
OWNER_ACTION = """
from relatch.accounts.models import User
from relatch.index.manage.releases import delete_release, yank_release
from relatch.index.models import Project
owner = User.objects.get(username="maria")
project = Project.objects.get(normalized_name="journey-pkg")
{action}
print("DONE {{}}")
"""


def pip_install(python: Path, index: str, env: dict[str, str], spec: str) -> str:
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-cache-dir", "--upgrade", "--index-url",
         index, spec], capture_output=True, text=True, timeout=180, env=env, check=False)
    return ("" if done.returncode == 0 else "FAILED ") + done.stdout + done.stderr


def uv_install(python: Path, index: str, env: dict[str, str], spec: str) -> str:
    done = subprocess.run(
        [str(UV), "pip", "install", "--no-config", "--python", str(python), "--index-url",
         index, spec], capture_output=True, text=True, timeout=180, env=env, check=False)
    return ("" if done.returncode == 0 else "FAILED ") + done.stdout + done.stderr


def test_upload_install_yank_delete(tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        work = tmp_path / "dists"
        work.mkdir()
        maintainer = Index(server, "", work)
        maintainer.token = str(maintainer.shell(SETUP, "SETUP")["token"])
        index, env = f"{server.url}/simple/", _isolated_env(tmp_path)

        first = build_wheel("journey-pkg", "1.0", module_source="VALUE = 10\n")
        done = maintainer.twine(first, build_sdist("journey-pkg", "1.0"))
        assert done.returncode == 0, said(done)
        pip_python = _venv(tmp_path / "pip-venv", with_pip=True)
        assert not pip_install(pip_python, index, env, "journey-pkg").startswith("FAILED")
        assert _value_of(pip_python) == "10"

        second = build_wheel("journey-pkg", "1.1", module_source="VALUE = 11\n")
        done = maintainer.twine(second)
        assert done.returncode == 0, said(done)
        uv_python = _venv(tmp_path / "uv-venv", with_pip=False)
        assert not uv_install(uv_python, index, env, "journey-pkg").startswith("FAILED")
        assert _value_of(uv_python) == "11"

        yank = ('yank_release(request=None, owner=owner, project=project, version="1.1", '
                'reason="broken")')
        maintainer.shell(OWNER_ACTION.format(action=yank), "DONE")
        fresh = _venv(tmp_path / "after-yank", with_pip=True)
        assert not pip_install(fresh, index, env, "journey-pkg").startswith("FAILED")
        assert _value_of(fresh) == "10"  # the yanked 1.1 is skipped (PEP 592)

        delete = ('delete_release(request=None, owner=owner, project=project, version="1.1", '
                  'confirmation="1.1")')
        maintainer.shell(OWNER_ACTION.format(action=delete), "DONE")
        empty = _venv(tmp_path / "after-delete", with_pip=False)
        gone = uv_install(empty, index, env, "journey-pkg==1.1")
        assert gone.startswith("FAILED"), gone
        done = maintainer.twine(second)  # a deleted file's name is never used again
        assert done.returncode != 0
        assert "File already exists" in said(done)


def _value_of(python: Path) -> str:
    done = subprocess.run([str(python), "-c", "import journey_pkg; print(journey_pkg.VALUE)"],
                          capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.strip()
