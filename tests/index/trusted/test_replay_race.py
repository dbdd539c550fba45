"""The replay lock under concurrency, on a real ``relatch serve`` (two web processes, their
threads, its own database): the same OIDC token exchanged by several requests at the same
moment mints exactly one upload token. The unique insert of the jti is the check, so there is
no window between looking and recording (PyPI's audit, TOB-PYPI26-2)."""

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.index.trusted.conftest import AUDIENCE
from tests.index.uploading import server_database, shell_json
from tests.oidc_issuer import FakeIssuer
from tests.serving import running_server
from tests.tls import TestCA

pytestmark = [pytest.mark.slow, pytest.mark.own_database]

RACERS = 6
SETUP = """
from relatch.accounts.provisioning import create_verified_user
from relatch.index.models import Project, Role
from relatch.index.trusted.models import TrustedPublisher
from relatch.mfa.models import TotpDevice
user = create_verified_user(username="carol", email="carol@example.org", password=None)
TotpDevice.objects.create(user=user, encrypted_secret="x")
project = Project.objects.create(name="acme-tool", normalized_name="acme-tool")
Role.objects.create(project=project, user=user, kind=Role.Kind.OWNER)
TrustedPublisher.objects.create(project=project, added_by=user, issuer={issuer!r},
                                dialect="github", repository="acme/tool", workflow="release.yml")
print("{{}}")
"""
STATE = """
import json
from relatch.index.models import APIToken
from relatch.index.trusted.models import UsedOIDCToken
print(json.dumps({"minted": APIToken.objects.filter(publisher__isnull=False).count(),
                  "used": UsedOIDCToken.objects.count()}))
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    with server_database(str(request.param)) as env:
        yield env


def _mint(url: str, token: str, start: threading.Barrier) -> tuple[int, str]:
    start.wait()
    response = requests.post(url + "/_/oidc/mint-token", json={"token": token},
                             headers={"Connection": "close"}, timeout=60)
    return response.status_code, response.text


def test_one_token_exchanged_at_once_by_several_requests_mints_one(
    tmp_path: Path, database: dict[str, str], github_issuer: FakeIssuer, test_ca: TestCA
) -> None:
    env = {**database, "RELATCH_OIDC_ISSUERS": f"github={github_issuer.url}",
           "RELATCH_OIDC_AUDIENCE": AUDIENCE, "SSL_CERT_FILE": str(test_ca.ca_file),
           "RELATCH_WEB_WORKERS": "2"}
    with running_server(tmp_path, **env) as server:
        shell_json(server, SETUP.format(issuer=github_issuer.url))

        def token() -> str:
            return github_issuer.sign(github_issuer.github_claims(
                repository="acme/tool", workflow="release.yml", audience=AUDIENCE))

        # Each web process fetches the keys once first, so the racers meet at the database.
        for _ in range(4):
            assert requests.post(server.url + "/_/oidc/mint-token", json={"token": token()},
                                 timeout=60).status_code == 200
        raced = token()
        start = threading.Barrier(RACERS)
        with ThreadPoolExecutor(max_workers=RACERS) as pool:
            answers = list(pool.map(lambda _: _mint(server.url, raced, start), range(RACERS)))

        statuses = sorted(status for status, _ in answers)
        assert statuses == [200] + [422] * (RACERS - 1), answers
        assert all("already exchanged" in text for status, text in answers if status == 422)
        assert shell_json(server, STATE) == {"minted": 5, "used": 5}
