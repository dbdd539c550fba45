"""Trusted publishing end to end with the real clients (issue 21, "Done when").

A real ``relatch serve`` behind a TLS-terminating proxy (``tests.tls_proxy``) at
``https://localhost:PORT``, two OIDC issuers on loopback (``tests.oidc_issuer``), and the real
``uv publish --trusted-publishing always`` and ``twine upload``. uv builds
``https://<host of the upload URL>/_/oidc/…`` itself, over https whatever the URL says, which
is why the index must be served over TLS here. Everyone (Relatch fetching the issuers' keys,
uv, twine, curl, this test) trusts the test CA through SSL_CERT_FILE and nothing else.
"""

import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.index.clients import UV, client_env
from tests.index.dists import Dist, build_sdist, build_wheel
from tests.oidc_issuer import FakeIssuer
from tests.serving import Server, running_server
from tests.tls import TestCA
from tests.tls_proxy import TLSProxy, tls_proxy

pytestmark = [pytest.mark.slow, pytest.mark.own_database]

TWINE = Path(sys.executable).with_name("twine")
TIMEOUT = 180
# The audience Relatch asks for by default: the host of RELATCH_BASE_URL.
AUDIENCE = "localhost"
MASK = re.compile(r"::add-mask::(relatch-\S+)")

# Run in the server's data directory: carol (with a second factor) owns gh-tool and gl-tool,
# and each has a trusted publisher (rows, as the publishing pages would make them).
SETUP = """
import json
from relatch.accounts.provisioning import create_verified_user
from relatch.index.changes import mark_project_list_changed
from relatch.index.models import Project, Role
from relatch.index.trusted.models import TrustedPublisher
from relatch.mfa.models import TotpDevice
carol = create_verified_user(username="carol", email="carol@example.org", password=None)
TotpDevice.objects.create(user=carol, encrypted_secret="x")
for name, issuer, dialect, repository, workflow in json.loads(PUBLISHERS):
    project = Project.objects.create(name=name, normalized_name=name)
    Role.objects.create(project=project, user=carol, kind=Role.Kind.OWNER)
    TrustedPublisher.objects.create(project=project, added_by=carol, issuer=issuer,
                                    dialect=dialect, repository=repository, workflow=workflow)
mark_project_list_changed()
print("SETUP done")
"""

TOKEN_STATE = """
import json
from relatch.index.models import APIToken
row = APIToken.objects.filter(publisher__isnull=False).order_by("-created_at").first()
print(json.dumps({"revoked": row.revoked_at is not None, "because": row.revoked_because}))
"""


@dataclass
class Live:
    ca: TestCA
    proxy: TLSProxy
    server: Server
    github: FakeIssuer
    gitlab: FakeIssuer
    work: Path

    @property
    def url(self) -> str:
        return self.proxy.url

    def get(self, path: str) -> tuple[int, str]:
        """GET over TLS through the proxy, trusting only the test CA."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=60,  # noqa: S310 (loopback)
                                        context=self.ca.client_context()) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def dists(self, *dists: Dist) -> list[Path]:
        paths = []
        for dist in dists:
            path = self.work / dist.filename
            path.write_bytes(dist.content)
            paths.append(path)
        return paths

    def client_env(self, **extra: str) -> dict[str, str]:
        """A clean client environment that trusts the test CA (uv reads SSL_CERT_FILE,
        requests (twine) REQUESTS_CA_BUNDLE)."""
        ca = str(self.ca.ca_file)
        return client_env(self.work / "home", {"SSL_CERT_FILE": ca, "REQUESTS_CA_BUNDLE": ca,
                                               **extra})

    def uv_publish(self, *paths: Path) -> subprocess.CompletedProcess[str]:
        """``uv publish --trusted-publishing always`` as a GitHub Actions job runs it."""
        env = self.client_env(**self.github.actions_env())
        return subprocess.run(
            [str(UV), "publish", "--trusted-publishing", "always",
             "--publish-url", f"{self.url}/legacy/", *map(str, paths)],
            env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False,
        )

    def twine(self, token: str, *paths: Path) -> subprocess.CompletedProcess[str]:
        config = self.work / "pypirc"
        config.write_text("")
        env = self.client_env(COLUMNS="1000", NO_COLOR="1")
        return subprocess.run(
            [str(TWINE), "upload", "--repository-url", f"{self.url}/legacy/",
             "-u", "__token__", "-p", token, "--non-interactive", "--disable-progress-bar",
             "--config-file", str(config), *map(str, paths)],
            env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False,
        )

    def curl_post(self, path: str, body: dict[str, str]) -> tuple[int, dict[str, object]]:
        """POST JSON as the GitLab CI documentation's ``curl -X POST … -d '{…}'`` does (curl's
        default form content type, a JSON body)."""
        done = subprocess.run(
            ["curl", "-sS", "--cacert", str(self.ca.ca_file), "-X", "POST", "-o", "-",
             "-w", "\n%{http_code}", self.url + path, "-d", json.dumps(body)],
            env=self.client_env(), capture_output=True, text=True, timeout=60, check=False,
        )
        assert done.returncode == 0, done.stderr
        text, _, status = done.stdout.rpartition("\n")
        return int(status), json.loads(text or "{}")


def said(done: subprocess.CompletedProcess[str]) -> str:
    return " ".join((done.stdout + done.stderr).split())


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp_path = tmp_path_factory.mktemp("publish-clients")
    ca = TestCA(tmp_path / "ca")
    work = tmp_path / "work"
    work.mkdir()
    with (FakeIssuer(ca).running() as github, FakeIssuer(ca).running() as gitlab,
          tls_proxy(ca) as proxy):
        env = {
            "RELATCH_BASE_URL": proxy.url,
            "RELATCH_PROXY_COUNT": "1",
            "RELATCH_OIDC_ISSUERS": f"github={github.url},gitlab={gitlab.url}",
            # Relatch fetches the issuers' discovery documents and keys over TLS.
            "SSL_CERT_FILE": str(ca.ca_file),
        }
        with running_server(tmp_path, **env) as server:
            proxy.backend = server.port
            publishers = [
                ["gh-tool", github.url, "github", "acme/gh-tool", "release.yml"],
                ["gl-tool", gitlab.url, "gitlab", "tools/gl-tool", ".gitlab-ci.yml"],
            ]
            done = server.relatch("shell", "-c",
                                  f"PUBLISHERS = {json.dumps(json.dumps(publishers))}\n{SETUP}")
            assert done.returncode == 0, done.stderr
            yield Live(ca, proxy, server, github, gitlab, work)


def listed(live: Live, project: str) -> str:
    status, page = live.get(f"/simple/{project}/")
    assert status == 200, page
    return page


def test_the_audience_is_served_at_the_hosts_root(live: Live) -> None:
    status, body = live.get("/_/oidc/audience")
    assert (status, json.loads(body)) == (200, {"audience": AUDIENCE})


def test_uv_publishes_from_github_actions(live: Live) -> None:
    """(1) ``uv publish --trusted-publishing always`` inside a "GitHub Actions job": it asks
    Relatch for the audience, asks the job's issuer for a token, exchanges it and uploads a
    wheel and an sdist with the minted token."""
    live.github.next_claims = live.github.github_claims(
        repository="acme/gh-tool", workflow="release.yml", audience="not used")
    wheel, sdist = build_wheel("gh-tool", "1.0"), build_sdist("gh-tool", "1.0")
    done = live.uv_publish(*live.dists(wheel, sdist))
    assert done.returncode == 0, said(done)
    assert live.github.token_requests[-1] == AUDIENCE
    page = listed(live, "gh-tool")
    assert wheel.filename in page and sdist.filename in page
    _status, body = live.get("/pypi/gh-tool/json")
    [via] = {json.dumps(f["uploaded_via"], sort_keys=True) for f in json.loads(body)["urls"]}
    assert json.loads(via)["publisher"]["repository"] == "acme/gh-tool"


def test_twine_publishes_from_gitlab_ci_after_the_exchange(live: Live) -> None:
    """(2) A GitLab job's ID token (``id_tokens: aud:`` = Relatch's audience), exchanged with
    curl as GitLab's documentation shows, then ``twine upload`` with the minted token."""
    claims = live.gitlab.gitlab_claims(project_path="tools/gl-tool", audience=AUDIENCE)
    status, answer = live.curl_post("/_/oidc/mint-token", {"token": live.gitlab.sign(claims)})
    assert status == 200, answer
    token = str(answer["token"])
    assert token.startswith("relatch-")
    wheel, sdist = build_wheel("gl-tool", "1.0"), build_sdist("gl-tool", "1.0")
    done = live.twine(token, *live.dists(wheel, sdist))
    assert done.returncode == 0, said(done)
    page = listed(live, "gl-tool")
    assert wheel.filename in page and sdist.filename in page


def test_uv_shows_why_a_workflow_that_does_not_match_is_refused(live: Live) -> None:
    """(3) The job runs another workflow of the repository: no token, nothing uploaded, and
    uv's output carries Relatch's reason."""
    live.github.next_claims = live.github.github_claims(
        repository="acme/gh-tool", workflow="nightly.yml", audience="not used")
    wheel = build_wheel("gh-tool", "3.0")
    done = live.uv_publish(*live.dists(wheel))
    assert done.returncode != 0
    output = said(done)
    assert "the publishers of this repository name another workflow" in output, output
    assert wheel.filename not in listed(live, "gh-tool")


def burns(live: Live) -> int:
    return live.proxy.requests.count(("POST", "/_/oidc/burn-token"))


def test_uv_burns_its_token_when_done(live: Live) -> None:
    """(4) uv 0.13 ends the token it minted once the upload is done (POST
    /_/oidc/burn-token): what a job's log shows (uv prints it as a mask command) uploads
    nothing more."""
    live.github.next_claims = live.github.github_claims(
        repository="acme/gh-tool", workflow="release.yml", audience="not used")
    before = burns(live)
    done = live.uv_publish(*live.dists(build_wheel("gh-tool", "2.0")))
    assert done.returncode == 0, said(done)
    assert burns(live) == before + 1
    state = live.server.relatch("shell", "-c", TOKEN_STATE)
    assert json.loads(state.stdout.strip().splitlines()[-1]) == {
        "revoked": True, "because": "finished"}
    # In a GitHub Actions job uv prints the minted token as a mask command for the log.
    token = MASK.search(done.stdout)
    assert token, done.stdout
    refused_after_burn(live, token[1], build_wheel("gh-tool", "2.1"))


def test_a_token_burned_with_curl_uploads_nothing_more(live: Live) -> None:
    """(4) The GitLab job of (2) ends its token itself when twine is done."""
    claims = live.gitlab.gitlab_claims(project_path="tools/gl-tool", audience=AUDIENCE)
    status, answer = live.curl_post("/_/oidc/mint-token", {"token": live.gitlab.sign(claims)})
    assert status == 200, answer
    token = str(answer["token"])
    done = live.twine(token, *live.dists(build_wheel("gl-tool", "2.0")))
    assert done.returncode == 0, said(done)
    assert live.curl_post("/_/oidc/burn-token", {"token": token})[0] == 202
    refused_after_burn(live, token, build_wheel("gl-tool", "2.1"))


def refused_after_burn(live: Live, token: str, dist: Dist) -> None:
    done = live.twine(token, *live.dists(dist))
    assert done.returncode != 0
    assert "revoked" in said(done).lower(), said(done)
    project = str(dist.fields["name"])
    assert dist.filename not in listed(live, project)
