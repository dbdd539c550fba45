"""Real pip through ONE --index-url: a Relatch whose upstream is a second, real Relatch on
loopback holding real wheels (issue 20, "Done when"). Never the internet.

The upstream holds an upstream-only package, a tiny PEP 517 build backend (a real one: it
writes a wheel with zipfile), and a HIGHER version of a name the main index has itself (the
dependency-confusion attack). The main index holds an sdist whose pyproject requires that
backend, which is only upstream.
"""

import io
import json
import os
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.index.dists import Dist, build_wheel
from tests.serving import Server, running_server, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.own_database]

# The backend module: PEP 517's build_wheel, reading the sdist's PKG-INFO for name/version.
BACKEND = '''
import base64, hashlib, os, zipfile
from email.parser import Parser


def _record(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    with open("PKG-INFO") as handle:
        info = Parser().parse(handle)
    name, version = info["Name"], info["Version"]
    dist = name.replace("-", "_")
    meta = f"{dist}-{version}.dist-info"
    files = {}
    for root, _dirs, names in os.walk(dist):
        for each in names:
            with open(os.path.join(root, each), "rb") as handle:
                files[os.path.join(root, each)] = handle.read()
    metadata = f"Metadata-Version: 2.1\\nName: {name}\\nVersion: {version}\\n"
    files[f"{meta}/METADATA"] = metadata.encode()
    files[f"{meta}/WHEEL"] = (b"Wheel-Version: 1.0\\nGenerator: tiny-backend\\n"
                              b"Root-Is-Purelib: true\\nTag: py3-none-any\\n")
    record = [_record(p, d) for p, d in files.items()] + [f"{meta}/RECORD,,"]
    files[f"{meta}/RECORD"] = ("\\n".join(record) + "\\n").encode()
    filename = f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return filename
'''


def _sdist_built_by_tiny_backend() -> Dist:
    """local-sdist 1.0: an sdist whose build backend (tiny-backend) is only upstream."""
    metadata = "Metadata-Version: 2.1\nName: local-sdist\nVersion: 1.0\n"
    root = "local_sdist-1.0"
    members = {
        f"{root}/PKG-INFO": metadata.encode(),
        f"{root}/pyproject.toml": (
            b'[build-system]\nrequires = ["tiny-backend"]\nbuild-backend = "tiny_backend"\n'
        ),
        f"{root}/local_sdist/__init__.py": b"VALUE = 'built by tiny-backend'\n",
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path, data in members.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return Dist(f"{root}.tar.gz", buffer.getvalue(), metadata)


def _import(server: Server, tmp_path: Path, *dists: Dist) -> None:
    """One command for all (each ``relatch`` command costs a Django start)."""
    for dist in dists:
        (tmp_path / dist.filename).write_bytes(dist.content)
    paths = [str(tmp_path / dist.filename) for dist in dists]
    done = server.relatch("index_import_file", *paths, "--owner", "maria")
    assert done.returncode == 0, done.stderr


UPSTREAM_ONLY = build_wheel("up-only", "1.0", module_source="VALUE = 'from upstream'\n")
RACE = build_wheel("race-pkg", "1.0")
TINY_BACKEND = build_wheel("tiny-backend", "1.0", module_source=BACKEND)
ATTACKER = build_wheel("shared-name", "9.0", module_source="VALUE = 'attacker'\n")
LOCAL = build_wheel("shared-name", "1.0", module_source="VALUE = 'local'\n")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:
    """(upstream, main): two real Relatch servers, main's RELATCH_UPSTREAM the other."""
    up_dir, main_dir = tmp_path_factory.mktemp("upstream"), tmp_path_factory.mktemp("main")
    with running_server(up_dir) as upstream:
        upstream.create_account("maria")
        _import(upstream, up_dir, UPSTREAM_ONLY, RACE, TINY_BACKEND, ATTACKER)
        with running_server(main_dir, RELATCH_UPSTREAM=upstream.url + "/simple/",
                            RELATCH_UPSTREAM_PAGE_SECONDS="1") as main:
            main.create_account("maria")
            _import(main, main_dir, LOCAL, _sdist_built_by_tiny_backend())
            yield upstream, main


def _pip(python: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1")
    return subprocess.run([str(python), "-m", "pip", *args, "--no-cache-dir"],
                          capture_output=True, text=True, timeout=300, env=env, check=False)


def _value(python: Path, module: str) -> str:
    done = subprocess.run([str(python), "-c", f"import {module}; print({module}.VALUE)"],
                          capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.strip()


def _shell_json(server: Server, code: str) -> object:
    done = server.relatch("shell", "-c", code)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_pip_installs_through_one_index_and_the_local_name_wins(
    servers: tuple[Server, Server], tmp_path: Path
) -> None:
    _upstream, main = servers
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True,
                   timeout=120)
    python = tmp_path / "venv" / "bin" / "python"
    index = f"{main.url}/simple/"
    pip = _pip(python, tmp_path, "install", "--index-url", index,
               "up-only", "local-sdist", "shared-name")
    assert pip.returncode == 0, pip.stdout + pip.stderr
    assert _value(python, "up_only") == "from upstream"
    # Built from the local sdist by a backend pip could only find upstream, through Relatch.
    assert _value(python, "local_sdist") == "built by tiny-backend"
    # The upstream's 9.0 of a local name is never offered: the local 1.0 is installed.
    assert _value(python, "shared_name") == "local"
    status, body, headers = main.get("/simple/shared-name/")
    assert status == 200 and ATTACKER.filename.encode() not in body
    assert "X-Relatch-Upstream" not in headers


def _file_path(main: Server, name: str) -> str:
    json_page = "?format=application/vnd.pypi.simple.v1%2Bjson"
    status, body, _headers = main.get(f"/simple/{name}/{json_page}")
    assert status == 200, body
    return str(json.loads(body)["files"][0]["url"])


def test_two_first_downloads_at_once_store_one_good_copy(
    servers: tuple[Server, Server]
) -> None:
    _upstream, main = servers
    path = _file_path(main, "race-pkg")
    start = threading.Barrier(4)
    results: list[tuple[int, bytes]] = []

    def fetch() -> None:
        start.wait()
        status, body, _headers = main.get(path)
        results.append((status, body))

    threads = [threading.Thread(target=fetch) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert results == [(200, RACE.content)] * 4
    rows = _shell_json(main, (
        "import json; from relatch.index.models import UpstreamFile as U; "
        "print(json.dumps([r.storage_name for r in U.objects.filter(project_name='race-pkg')]))"
    ))
    assert isinstance(rows, list) and len(rows) == 1
    stored = list((main.data_dir / "files" / "upstream").rglob(RACE.filename))
    assert [p.read_bytes() for p in stored] == [RACE.content]  # the losers' copies are gone


def test_with_the_upstream_gone_stored_files_and_stale_pages_are_served(
    servers: tuple[Server, Server], tmp_path: Path
) -> None:
    """Last in the module: it stops the upstream."""
    upstream, main = servers
    path = _file_path(main, "up-only")
    assert main.get(path)[:2] == (200, UPSTREAM_ONLY.content)
    upstream.stop()
    # A second download needs no upstream.
    assert main.get(path)[:2] == (200, UPSTREAM_ONLY.content)
    # Past UPSTREAM_PAGE_SECONDS (1 s here) the page is revalidated, fails, and is served
    # from what is kept, saying so.
    answer = wait_for(lambda: (r := main.get("/simple/up-only/"))[2].get(
        "X-Relatch-Upstream") == "stale" and r, 30)
    assert answer, "the kept page was never served as stale"
    assert answer[0] == 200 and UPSTREAM_ONLY.filename.encode() in answer[1]
    assert "serving the page kept since" in main.output()
    # Never kept anywhere: nothing to serve, a clear 502.
    status, body, _headers = main.get("/simple/never-seen/")
    assert status == 502 and b"did not answer" in body
