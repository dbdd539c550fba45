"""Real installers pointed at ONE index URL, each in a fresh environment with nothing of the
machine's configuration, caches or credentials (tests/index/test_clients.py).

Every helper takes an ``Access`` (the URL, and for private reads a read token that each client
carries its own way) and ``extra`` environment variables, so other ways of serving the index
(read access, an upstream) are parametrizations of the same calls.

The installers: pip 23.0.1 (what ``python3.10 -m venv`` gives), the newest pip and poetry
(``./dev test`` installs them, pinned, under .cache/clients/), and uv from our own venv.
"""

import base64
import os
import shutil
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[2]
CACHED_CLIENTS = REPO / ".cache" / "clients"
NEWEST_PIP = CACHED_CLIENTS / "pip" / "bin" / "python"
POETRY = CACHED_CLIENTS / "poetry" / "bin" / "poetry"
UV = Path(sys.executable).with_name("uv")
TIMEOUT = 300
# Nothing but the index on loopback: any request that would go elsewhere (pypi.org, a
# self-update check) meets a proxy where nothing listens, and fails instead of leaving the host.
NOWHERE = "http://127.0.0.1:9"
LEAKY_PREFIXES = ("PIP_", "UV_", "POETRY_", "VIRTUALENV_", "PYTHON", "RELATCH_", "DJANGO_")
PROXIES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@dataclass(frozen=True)
class Access:
    """How a client reaches the index: one URL, and with RELATCH_READ_ACCESS=authenticated a
    read token, sent as HTTP Basic ``__token__:<token>``. ``name`` is the index's name in uv
    and poetry (their credential variables are named after it)."""

    url: str
    token: str = ""
    name: str = "relatch"

    def pip_url(self) -> str:
        """pip takes credentials in the URL."""
        if not self.token:
            return self.url
        parts = urlsplit(self.url)
        userinfo = f"__token__:{quote(self.token, safe='')}@"
        return urlunsplit(parts._replace(netloc=userinfo + parts.netloc))

    def get(self, path: str, accept: str) -> tuple[str, bytes]:
        """GET ``path`` under the index URL as a client would: content type and body."""
        headers = {"Accept": accept}
        if self.token:
            basic = base64.b64encode(f"__token__:{self.token}".encode()).decode()
            headers["Authorization"] = f"Basic {basic}"
        request = urllib.request.Request(self.url + path, headers=headers)  # noqa: S310
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 (loopback)
            return response.headers["Content-Type"], response.read()

    def uv_env(self) -> dict[str, str]:
        if not self.token:
            return {}
        key = self.name.upper().replace("-", "_")
        return {f"UV_INDEX_{key}_USERNAME": "__token__", f"UV_INDEX_{key}_PASSWORD": self.token}

    def poetry_env(self) -> dict[str, str]:
        if not self.token:
            return {}
        key = self.name.upper().replace("-", "_")
        return {f"POETRY_HTTP_BASIC_{key}_USERNAME": "__token__",
                f"POETRY_HTTP_BASIC_{key}_PASSWORD": self.token}


def client_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a user with an empty home: no pip.conf, uv.toml, poetry config,
    netrc, keyring or cache of this machine's, and no way off loopback."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(LEAKY_PREFIXES) and k.lower() not in PROXIES}
    home.mkdir(parents=True, exist_ok=True)
    env.update(
        HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), XDG_CACHE_HOME=str(home / ".cache"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1",
        UV_NO_CONFIG="1", UV_CACHE_DIR=str(home / "uv-cache"), UV_PYTHON_DOWNLOADS="never",
        PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
        HTTP_PROXY=NOWHERE, HTTPS_PROXY=NOWHERE, ALL_PROXY=NOWHERE, NO_PROXY="127.0.0.1,localhost",
    )
    env.update(extra or {})
    return env


def run(command: list[str | Path], env: dict[str, str],
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``command``; fail the test with everything it said unless it exits 0."""
    done = subprocess.run([str(part) for part in command], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=TIMEOUT, check=False)
    said = f"{done.stdout}\n{done.stderr}"
    assert done.returncode == 0, f"{command} exited {done.returncode}:\n{said}"
    return done


def venv(path: Path, python: Path | str = sys.executable, *, with_pip: bool) -> Path:
    """A fresh virtual environment made by ``python -m venv``; its interpreter."""
    run([python, "-m", "venv", *([] if with_pip else ["--without-pip"]), path], dict(os.environ))
    return path / "bin" / "python"


def python310() -> Path | None:
    """pyenv's newest Python 3.10 (whose ``venv`` brings pip 23.0.1), else python3.10 on PATH."""
    roots = [Path(os.environ["PYENV_ROOT"])] if os.environ.get("PYENV_ROOT") else []
    if shutil.which("pyenv"):
        found = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=False)
        roots += [Path(found.stdout.strip())] if found.returncode == 0 else []
    roots.append(Path.home() / ".pyenv")
    for root in roots:
        pythons = sorted((root / "versions").glob("3.10.*/bin/python"),
                         key=lambda p: [int(x) for x in p.parent.parent.name.split(".")[:3]
                                        if x.isdigit()])
        if pythons:
            return pythons[-1]
    on_path = shutil.which("python3.10")
    return Path(on_path) if on_path else None


def pip_version(pip: list[str | Path], env: dict[str, str]) -> str:
    return run([*pip, "--version"], env).stdout.split()[1]


def pip_install(pip: list[str | Path], access: Access, env: dict[str, str],
                *requirements: str) -> subprocess.CompletedProcess[str]:
    """``pip install`` through ``access`` only; its build environments use the same index."""
    return run([*pip, "install", "--no-cache-dir", "--index-url", access.pip_url(),
                *requirements], env)


def uv_install(python: Path, access: Access, env: dict[str, str],
               *requirements: str) -> subprocess.CompletedProcess[str]:
    """``uv pip install`` into ``python``'s environment, with ``access`` as its only index
    (named, so UV_INDEX_<NAME>_USERNAME/PASSWORD apply to it)."""
    return run([UV, "pip", "install", "--no-config", "--no-cache", "--python", python,
                "--default-index", f"{access.name}={access.url}", *requirements],
               {**env, **access.uv_env()})


def poetry_project(path: Path, access: Access, *requirements: str) -> Path:
    """A project with ``requirements`` and the index as its primary source (so PyPI is not
    one), no package of its own."""
    path.mkdir(parents=True)
    listed = ", ".join(f'"{requirement}"' for requirement in requirements)
    (path / "pyproject.toml").write_text(
        '[project]\nname = "client-matrix"\nversion = "0"\nrequires-python = ">=3.10"\n'
        f"dependencies = [{listed}]\n\n[tool.poetry]\npackage-mode = false\n\n"
        f'[[tool.poetry.source]]\nname = "{access.name}"\nurl = "{access.url}"\n'
        'priority = "primary"\n'
    )
    return path


def poetry_env(home: Path, access: Access, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Poetry's config, cache and data under ``home``; the project's venv in the project."""
    return client_env(home, {
        "POETRY_CONFIG_DIR": str(home / "poetry-config"),
        "POETRY_CACHE_DIR": str(home / "poetry-cache"),
        "POETRY_DATA_DIR": str(home / "poetry-data"),
        "POETRY_VIRTUALENVS_IN_PROJECT": "true",
        "POETRY_VIRTUALENVS_USE_POETRY_PYTHON": "true",
        "POETRY_NO_INTERACTION": "1",
        **access.poetry_env(), **(extra or {}),
    })


def poetry_install(project: Path, env: dict[str, str]) -> Path:
    """``poetry lock`` and ``poetry install`` in ``project``; the project venv's interpreter."""
    run([POETRY, "lock"], env, cwd=project)
    run([POETRY, "install", "--no-root"], env, cwd=project)
    return project / ".venv" / "bin" / "python"
