"""Real pip and uv install from a running ``relatch serve`` (issue 4, "Installing"): a fresh
virtual environment, only our index, PEP 592 yanks respected."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.index.dists import build_wheel
from tests.serving import Server, running_server

UV = Path(sys.executable).with_name("uv")
YANK = (
    "from relatch.index.changes import mark_project_changed; "
    "from relatch.index.models import Project, Release; "
    "Release.objects.filter(version='1.1').update(yanked=True, yanked_reason='broken'); "
    "mark_project_changed(project_id=Project.objects.get().pk)"
)


def _load(server: Server, tmp_path: Path) -> None:
    """sample-pkg 1.0 (VALUE 10) and 1.1 (VALUE 11, yanked) in the server's database."""
    server.create_account("maria")
    for version, value in (("1.0", 10), ("1.1", 11)):
        dist = build_wheel("sample-pkg", version, module_source=f"VALUE = {value}\n")
        path = tmp_path / dist.filename
        path.write_bytes(dist.content)
        result = server.relatch("index_import_file", str(path), "--owner", "maria")
        assert result.returncode == 0, result.stderr
        assert f"imported {dist.filename}" in result.stdout
    result = server.relatch("shell", "-c", YANK)
    assert result.returncode == 0, result.stderr


def _venv(path: Path, *, with_pip: bool) -> Path:
    command = [sys.executable, "-m", "venv", str(path)] + ([] if with_pip else ["--without-pip"])
    subprocess.run(command, check=True, timeout=120)
    return path / "bin" / "python"


def _value(python: Path) -> str:
    result = subprocess.run([str(python), "-c", "import sample_pkg; print(sample_pkg.VALUE)"],
                            capture_output=True, text=True, timeout=60, check=True)
    return result.stdout.strip()


def _isolated_env(tmp_path: Path) -> dict[str, str]:
    """No user configuration, no shared cache: only what the command line names."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1",
               UV_NO_CACHE="1", UV_CACHE_DIR=str(tmp_path / "uv-cache"), UV_NO_CONFIG="1")
    return env


@pytest.mark.slow
@pytest.mark.own_database
def test_pip_and_uv_install_from_the_index(tmp_path: Path) -> None:
    with running_server(tmp_path) as server:
        _load(server, tmp_path)
        index = f"{server.url}/simple/"
        env = _isolated_env(tmp_path)

        pip_python = _venv(tmp_path / "pip-venv", with_pip=True)
        pip = subprocess.run(
            [str(pip_python), "-m", "pip", "install", "--no-cache-dir", "--index-url", index,
             "sample-pkg"], capture_output=True, text=True, timeout=180, env=env, check=False)
        assert pip.returncode == 0, pip.stdout + pip.stderr
        assert _value(pip_python) == "10"  # 1.1 is yanked (PEP 592): pip takes 1.0
        target = tmp_path / "downloads"
        download = subprocess.run(
            [str(pip_python), "-m", "pip", "download", "--no-cache-dir", "--no-deps",
             "--index-url", index, "--dest", str(target), "sample-pkg"],
            capture_output=True, text=True, timeout=180, env=env, check=False)
        assert download.returncode == 0, download.stdout + download.stderr
        assert [p.name for p in target.iterdir()] == ["sample_pkg-1.0-py3-none-any.whl"]

        uv_python = _venv(tmp_path / "uv-venv", with_pip=False)
        uv = subprocess.run(
            [str(UV), "pip", "install", "--no-config", "--python", str(uv_python),
             "--index-url", index, "sample-pkg"],
            capture_output=True, text=True, timeout=180, env=env, check=False)
        assert uv.returncode == 0, uv.stdout + uv.stderr
        assert _value(uv_python) == "10"

        # A yanked release is still installable when pinned exactly (PEP 592).
        pinned = subprocess.run(
            [str(UV), "pip", "install", "--no-config", "--python", str(uv_python),
             "--index-url", index, "sample-pkg==1.1"],
            capture_output=True, text=True, timeout=180, env=env, check=False)
        assert pinned.returncode == 0, pinned.stdout + pinned.stderr
        assert _value(uv_python) == "11"
