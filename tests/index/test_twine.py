"""Real ``twine upload`` against a running ``relatch serve`` (issue 4 §3, "How it will be
checked"): twine's exit code, and for refused uploads the message a twine user reads."""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.index.dists import Dist, build_sdist, build_wheel
from tests.serving import Server, running_server

pytestmark = [pytest.mark.slow, pytest.mark.own_database]

TWINE = Path(sys.executable).with_name("twine")

# Run inside the server's data directory with `relatch shell -c`: an account with a second
# factor (a row, as tests/mfa/factor_rows.py makes it) and an all-projects API token.
SETUP = """
import json
from relatch.accounts.provisioning import create_verified_user
from relatch.index.tokens.services import create_token
from relatch.mfa.models import TotpDevice
user = create_verified_user(username="maria", email="maria@example.org", password=None)
TotpDevice.objects.create(user=user, encrypted_secret="x")
_row, text = create_token(request=None, user=user, name="ci", project=None, expires_at=None)
print("SETUP " + json.dumps({"token": text}))
"""

STATE = """
import json
from relatch.index.models import File, UsedFilename
print("STATE " + json.dumps({
    "files": sorted(File.objects.values_list("filename", "release__version", "path")),
    "used": UsedFilename.objects.count(),
}))
"""


@dataclass
class Index:
    server: Server
    token: str
    work: Path

    def shell(self, script: str, marker: str) -> dict[str, object]:
        done = self.server.relatch("shell", "-c", script)
        assert done.returncode == 0, done.stderr
        line = next(x for x in done.stdout.splitlines() if x.startswith(marker + " "))
        return dict(json.loads(line.removeprefix(marker + " ")))

    def twine(self, *dists: Dist, username: str = "__token__",
              password: str | None = None) -> subprocess.CompletedProcess[str]:
        paths = []
        for dist in dists:
            path = self.work / dist.filename
            path.write_bytes(dist.content)
            paths.append(str(path))
        config = self.work / "pypirc"
        config.write_text("")
        env = {**os.environ, "COLUMNS": "1000", "HOME": str(self.work), "NO_COLOR": "1",
               "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}
        return subprocess.run(
            [str(TWINE), "upload", "--repository-url", f"{self.server.url}/legacy/",
             "-u", username, "-p", self.token if password is None else password,
             "--non-interactive", "--disable-progress-bar", "--config-file", str(config),
             *paths],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )


def said(done: subprocess.CompletedProcess[str]) -> str:
    """twine's output on one line (rich may wrap long messages)."""
    return " ".join((done.stdout + done.stderr).split())


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    tmp = tmp_path_factory.mktemp("twine")
    # A 1 MB limit, so the oversized case needs only a small file.
    with running_server(tmp, RELATCH_MAX_UPLOAD_MB="1") as server:
        work = tmp / "dists"
        work.mkdir()
        index = Index(server, "", work)
        index.token = str(index.shell(SETUP, "SETUP")["token"])
        yield index


def test_twine_uploads_a_wheel_and_an_sdist(index: Index) -> None:
    wheel, sdist = build_wheel("twine-demo", "1.0"), build_sdist("twine-demo", "1.0")
    done = index.twine(wheel, sdist)
    assert done.returncode == 0, said(done)
    state = index.shell(STATE, "STATE")
    files = {name: (version, path) for name, version, path in state["files"]}  # type: ignore[attr-defined]
    assert set(files) >= {wheel.filename, sdist.filename}
    wheel_path = files[wheel.filename][1]
    stored = index.server.data_dir / "files" / wheel_path
    assert stored.read_bytes() == wheel.content
    assert (stored.parent / (stored.name + ".metadata")).read_text() == wheel.metadata


def test_twine_uploads_a_second_version(index: Index) -> None:
    done = index.twine(build_wheel("twine-demo", "1.1"))
    assert done.returncode == 0, said(done)
    state = index.shell(STATE, "STATE")
    assert "1.1" in {version for _name, version, _path in state["files"]}  # type: ignore[attr-defined]


def test_a_ci_job_run_again_uploads_the_same_files_and_succeeds(index: Index) -> None:
    """twine 7 refuses --skip-existing for any index but PyPI: a re-run CI job simply uploads
    again, and the same bytes are answered 200 (nothing changes)."""
    # With requirements: the form twine sends must match the wheel's METADATA (issue 20 §6).
    wheel = build_wheel("twine-rerun", "1.0",
                        requires_dist=("requests>=2.0", "tomli; python_version < '3.11'"))
    dists = [wheel, build_sdist("twine-rerun", "1.0")]
    first = index.twine(*dists)
    assert first.returncode == 0, said(first)
    before = index.shell(STATE, "STATE")
    again = index.twine(*dists)
    assert again.returncode == 0, said(again)
    assert index.shell(STATE, "STATE") == before
    for dist in dists:
        stored = index.server.data_dir / "files" / next(
            path for name, _v, path in before["files"]  # type: ignore[attr-defined]
            if name == dist.filename)
        assert stored.read_bytes() == dist.content


def test_twine_shows_why_other_bytes_under_a_used_name_are_refused(index: Index) -> None:
    dist = build_wheel("twine-dup", "1.0")
    assert index.twine(dist).returncode == 0
    done = index.twine(build_wheel("twine-dup", "1.0", module_source="VALUE = 43\n"))
    assert done.returncode != 0
    assert "400 Bad Request" in said(done)
    assert ("File already exists: 'twine_dup-1.0-py3-none-any.whl' is already in this index "
            "with other contents") in said(done)


def test_twine_shows_why_a_wrong_token_is_refused(index: Index) -> None:
    done = index.twine(build_wheel("twine-wrong", "1.0"), password=index.token[:-4] + "AAAA")
    assert done.returncode != 0
    assert "403 Forbidden" in said(done)
    assert "This API token is not valid" in said(done)


def test_twine_shows_that_passwords_do_not_upload(index: Index) -> None:
    done = index.twine(build_wheel("twine-pw", "1.0"), username="maria", password="hunter2")
    assert done.returncode != 0
    assert "user name and password is not accepted" in said(done)
    assert "/account/tokens/" in said(done)


def test_twine_shows_the_size_limit(index: Index) -> None:
    """The body is refused while it streams in; twine still reads the answer."""
    big = build_wheel("twine-big", "1.0", module_source=f"DATA = {os.urandom(1_500_000).hex()!r}\n")
    assert len(big.content) > 1024 * 1024
    done = index.twine(big)
    assert done.returncode != 0
    assert "413" in said(done)
    assert "File too large: the limit is 1 MB" in said(done)
    state = index.shell(STATE, "STATE")
    assert big.filename not in {n for n, _v, _p in state["files"]}  # type: ignore[attr-defined]
