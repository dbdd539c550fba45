"""The shipped deploy/nginx.conf, run by Debian's nginx in front of two real ``relatch serve``
hosts that share one PostgreSQL database and one files directory (issue 22, "a front proxy
that serves files"): twine uploads and pip installs through it over TLS, files are sent by
nginx (RELATCH_ACCEL_REDIRECT) with every check still made by Relatch."""

import http.client
import os
import re
import signal
import ssl
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import private_postgres
from tests.deploy import nginx as nginx_runner
from tests.deploy.nginx import Nginx, Site, running_nginx
from tests.index.clients import client_env, run, venv
from tests.index.dists import Dist, build_sdist, build_wheel
from tests.index.read_tokens import server_read_token, token_header
from tests.index.uploading import create_uploader, shell_json
from tests.serving import Server, free_port, running_server, wait_for
from tests.tls import TestCA

pytestmark = [
    pytest.mark.slow,
    pytest.mark.own_database,
    pytest.mark.skipif(bool(nginx_runner.available()), reason=nginx_runner.available()),
    pytest.mark.skipif(bool(private_postgres.available()), reason=private_postgres.available()),
]

TWINE = Path(sys.executable).with_name("twine")
ACCEL = "/internal-files/"
# What differs between two answers with the same content whoever sends them.
HOP_HEADERS = {"server", "date", "connection", "content-length", "keep-alive", "accept-ranges",
               "x-accel-redirect", "transfer-encoding"}


@dataclass
class Answer:
    status: int
    body: bytes
    headers: dict[str, str]  # lower-case names


def request(url: str, path: str, *, context: ssl.SSLContext | None = None,
            headers: dict[str, str] | None = None, method: str = "GET") -> Answer:
    """One request on a new connection (https when ``context`` is given)."""
    host, port = url.split("//", 1)[1].split(":")
    connection = (http.client.HTTPSConnection(host, int(port), context=context, timeout=60)
                  if context else http.client.HTTPConnection(host, int(port), timeout=60))
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return Answer(response.status, response.read(),
                      {name.lower(): value for name, value in response.getheaders()})
    finally:
        connection.close()


@dataclass
class Deployment:
    nginx: Nginx
    hosts: tuple[Server, Server]
    ca: TestCA
    work: Path
    token: str  # maria's upload token

    @property
    def url(self) -> str:
        return self.nginx.url.replace("127.0.0.1", "localhost")

    def get(self, path: str, **headers: str) -> Answer:
        """Through nginx, over TLS, as a client would."""
        return request(self.url, path, context=self.ca.client_context(), headers=headers)

    def direct(self, host: Server, path: str, **headers: str) -> Answer:
        """Straight to one host, as nginx asks it (https was ended at nginx)."""
        return request(f"http://127.0.0.1:{host.port}", path,
                       headers={"X-Forwarded-Proto": "https", **headers})

    def client_env(self, home: str, **extra: str) -> dict[str, str]:
        """A clean client environment trusting the test CA and nothing else (requests, so
        twine, reads REQUESTS_CA_BUNDLE; pip and uv SSL_CERT_FILE)."""
        ca = str(self.ca.ca_file)
        return client_env(self.work / home,
                          {"SSL_CERT_FILE": ca, "REQUESTS_CA_BUNDLE": ca, **extra})

    def twine(self, *dists: Dist) -> subprocess.CompletedProcess[str]:
        paths = []
        for dist in dists:
            (path := self.work / dist.filename).write_bytes(dist.content)
            paths.append(str(path))
        (config := self.work / "pypirc").write_text("")
        env = self.client_env("twine-home", COLUMNS="1000", NO_COLOR="1")
        return subprocess.run(
            [str(TWINE), "upload", "--repository-url", f"{self.url}/legacy/",
             "-u", "__token__", "-p", self.token, "--non-interactive",
             "--disable-progress-bar", "--config-file", str(config), *paths],
            env=env, capture_output=True, text=True, timeout=180, check=False,
        )


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """One database, two hosts and nginx for the module's tests (each makes its own
    project): starting them is most of the time these tests take."""
    with deployed(tmp_path_factory.mktemp("deployment")) as made:
        yield made


@contextmanager
def deployed(tmp_path: Path, *, store: str = "", **extra: str) -> Iterator[Deployment]:
    """``extra``: more (or other) settings for both hosts; ``store``: the S3 store's
    host:port nginx proxies bucket files from (RELATCH_ACCEL_REDIRECT=/internal-store/)."""
    ca = TestCA(tmp_path / "ca")
    certificate, key = ca.issue("127.0.0.1", "localhost")
    files = tmp_path / "files"
    for directory in (files, tmp_path / "a", tmp_path / "b"):
        directory.mkdir()
    https_port = free_port()
    with private_postgres.private_postgres() as postgres:
        settings = {
            "RELATCH_DATABASE_URL": postgres.create_database("relatch"),
            "RELATCH_FILES_DIR": str(files),
            "RELATCH_SECRET_KEY": "one key for every host " + "k" * 40,
            # A name, not an address: pip's TLS (truststore) wants a host name to check.
            "RELATCH_BASE_URL": f"https://localhost:{https_port}",
            "RELATCH_PROXY_COUNT": "1",
            "RELATCH_ACCEL_REDIRECT": ACCEL,
            **extra,
        }
        with (running_server(tmp_path / "a", **settings) as first,
              running_server(tmp_path / "b", **settings) as second):
            site = Site(hosts=(f"127.0.0.1:{first.port}", f"127.0.0.1:{second.port}"),
                        http_port=free_port(), https_port=https_port, certificate=certificate,
                        key=key, files_dir=files, access_log=tmp_path / "nginx" / "access.log",
                        **({"store": store} if store else {}))
            with running_nginx(tmp_path / "nginx", site) as nginx:
                yield Deployment(nginx, (first, second), ca, tmp_path,
                                 create_uploader(first))


def big_wheel(name: str) -> Dist:
    """A wheel of a few hundred KB that does not compress away: ranges have room."""
    return build_wheel(name, "1.0", module_source=f"BLOB = {os.urandom(150_000).hex()!r}\n"
                       "VALUE = 7\n")


def file_path(deployment: Deployment, filename: str) -> str:
    return str(shell_json(deployment.hosts[0], (
        "import json; from relatch.index.models import File; "
        f"print(json.dumps(File.objects.get(filename={filename!r}).path))")))


def test_uploads_installs_and_files_through_nginx(deployment: Deployment) -> None:
    wheel, sdist = big_wheel("accel-demo"), build_sdist("accel-demo", "1.0")
    uploaded = deployment.twine(wheel, sdist)
    assert uploaded.returncode == 0, uploaded.stdout + uploaded.stderr

    # pip installs through nginx (whichever host answers each request).
    python = venv(deployment.work / "pip-venv", with_pip=True)
    env = deployment.client_env("pip-home")
    run([python, "-m", "pip", "install", "--no-cache-dir", "--cert", deployment.ca.ca_file,
         "--index-url", f"{deployment.url}/simple/", "accel-demo"], env)
    shown = run([python, "-c", "import accel_demo; print(accel_demo.VALUE)"], env)
    assert shown.stdout.strip() == "7"

    # The file through nginx: the exact bytes. A host asked directly answers with an empty
    # body and the internal path: the bytes came from nginx, and nginx's log says so.
    path = "/files/" + file_path(deployment, wheel.filename)
    served = deployment.get(path)
    assert served.status == 200 and served.body == wheel.content
    assert "x-accel-redirect" not in served.headers
    for host in deployment.hosts:
        direct = deployment.direct(host, path)
        assert direct.status == 200 and direct.body == b""
        assert direct.headers["x-accel-redirect"] == ACCEL + path.removeprefix("/files/")
        # Every header Relatch decides reaches the client as Relatch gave it.
        assert _decided(served.headers) == _decided(direct.headers)
    logged = [line for line in deployment.nginx.access_lines() if f"GET {path} " in line]
    assert logged and f"accel={ACCEL}" in logged[-1], logged
    assert re.search(rf"\" 200 {len(wheel.content)} ", logged[-1]), logged
    # pip's download too: the hosts' own logs show every request for the file through nginx
    # (HTTP/1.0, nginx's way to them) answered with no byte of it.
    hosts_said = [line for host in deployment.hosts for line in host.output().splitlines()
                  if f'"GET {path} HTTP/1.0" 200 ' in line]
    assert any('"pip/' in line for line in hosts_said), hosts_said
    assert all(f'"GET {path} HTTP/1.0" 200 0 ' in line for line in hosts_said), hosts_said

    # A resumed download: nginx answers the range Relatch allowed, the exact slice.
    part = deployment.get(path, Range="bytes=1000-50999")
    assert part.status == 206 and part.body == wheel.content[1000:51000]
    assert part.headers["content-range"] == f"bytes 1000-50999/{len(wheel.content)}"
    assert part.headers["etag"] == f'"{wheel.sha256}"'
    # If-Range with the file's ETag still resumes; a 304 still comes from Relatch.
    same = deployment.get(path, Range="bytes=-100", **{"If-Range": f'"{wheel.sha256}"'})
    assert same.status == 206 and same.body == wheel.content[-100:]
    assert deployment.get(path, **{"If-None-Match": f'"{wheel.sha256}"'}).status == 304

    # The internal location is nginx's alone: a client asking for it gets 404, never bytes.
    internal = deployment.get(ACCEL + path.removeprefix("/files/"))
    assert internal.status == 404 and wheel.content not in internal.body
    encoded = deployment.get("/internal%2Dfiles/" + path.removeprefix("/files/"))
    assert encoded.status == 404 and wheel.content not in encoded.body


    # A secret link is logged without its secret, by nginx as by Relatch.
    deployment.get("/account/reset/MQ/secret-reset-token/?next=/")
    lines = wait_for(lambda: [line for line in deployment.nginx.access_lines()
                              if "/account/reset/" in line], 10)
    assert lines and "secret-reset-token" not in "\n".join(deployment.nginx.access_lines())
    assert "/account/reset/[redacted]/" in lines[-1], lines


def _decided(headers: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in headers.items() if name not in HOP_HEADERS}


def published(deployment: Deployment, dist: Dist) -> str:
    """Upload ``dist`` with twine through nginx; its /files/ path."""
    uploaded = deployment.twine(dist)
    assert uploaded.returncode == 0, uploaded.stdout + uploaded.stderr
    return "/files/" + file_path(deployment, dist.filename)


def make_private(deployment: Deployment, normalized_name: str) -> None:
    """The owner makes the project private (on the other host than the one asked next)."""
    shell_json(deployment.hosts[1], (
        "import json; from relatch.index.models import Project; "
        "from relatch.index.changes import mark_project_changed, mark_project_list_changed; "
        f"p = Project.objects.get(normalized_name={normalized_name!r}); "
        "Project.objects.filter(pk=p.pk).update(private=True); "
        "mark_project_changed(project_id=p.pk); mark_project_list_changed(); print('1')"))


def test_a_private_file_is_refused_through_nginx(deployment: Deployment) -> None:
    wheel = big_wheel("hidden-demo")
    path = published(deployment, wheel)
    make_private(deployment, "hidden-demo")

    anonymous = deployment.get(path)
    assert anonymous.status == 401 and wheel.content not in anonymous.body
    assert anonymous.headers["www-authenticate"].startswith("Basic")
    resumed = deployment.get(path, Range="bytes=0-99")
    assert resumed.status == 401 and wheel.content[:100] not in resumed.body

    reader = token_header(server_read_token(deployment.hosts[0], "maria"))
    allowed = deployment.get(path, Authorization=reader)
    assert allowed.status == 200 and allowed.body == wheel.content
    # A shared cache in front never keeps it for another reader: nginx passes both on.
    assert "private" in allowed.headers["cache-control"]
    assert "authorization" in allowed.headers["vary"].lower()


def test_a_dead_host_is_skipped(tmp_path: Path) -> None:
    """One host killed outright (SIGKILL, its whole process tree): nginx marks it failed
    and every download, install and upload goes to the other one (its own deployment, so
    the other tests keep both hosts)."""
    with deployed(tmp_path) as deployment:
        wheel = big_wheel("survivor-demo")
        uploaded = deployment.twine(wheel)
        assert uploaded.returncode == 0, uploaded.stdout + uploaded.stderr
        path = "/files/" + file_path(deployment, wheel.filename)
        dead = deployment.hosts[1]
        for pid in [dead.process.pid, *dead.children()]:
            os.kill(pid, signal.SIGKILL)
        assert wait_for(lambda: dead.process.poll() is not None, 30)

        answers = [deployment.get(path) for _ in range(10)]
        assert all(a.status == 200 and a.body == wheel.content for a in answers)
        assert deployment.get("/simple/survivor-demo/").status == 200
        later = deployment.twine(build_sdist("survivor-demo", "1.1"))
        assert later.returncode == 0, later.stdout + later.stderr
        # nginx's own account: the dead host refused, and the request went on.
        said = deployment.nginx.error_log()
        assert "Connection refused" in said and f'"http://127.0.0.1:{dead.port}/' in said
