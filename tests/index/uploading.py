"""Uploading to a real ``relatch serve`` over HTTP the way twine does (a multipart POST to
/legacy/ with the token in HTTP Basic auth), one at a time or many at the same moment."""

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import requests

from tests.index.dists import Dist
from tests.serving import Server
from tests.signin_load import fresh_postgres_database

# Run in the server's data directory with `relatch shell -c`: an account with a second factor
# (a row, as tests/mfa/factor_rows.py makes it) and an all-projects upload token.
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


@dataclass(frozen=True)
class Answer:
    status: int
    text: str


def create_uploader(server: Server) -> str:
    """An account that may upload, made as an operator would; its API token."""
    done = server.relatch("shell", "-c", SETUP)
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("SETUP "))
    return str(json.loads(line.removeprefix("SETUP "))["token"])


def shell_json(server: Server, code: str) -> object:
    """Run ``code`` in ``relatch shell``; the JSON it printed on its last line."""
    done = server.relatch("shell", "-c", code)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def upload(server: Server, token: str, dist: Dist, *, start: threading.Barrier | None = None
           ) -> Answer:
    """POST ``dist`` to /legacy/ as twine does (after ``start``, when given)."""
    data = {**dist.fields, "sha256_digest": dist.sha256, "blake2_256_digest": dist.blake2_256}
    # One connection per request: a kept-alive connection racing with the server's idle close
    # would be the client's failure, not the server's.
    headers = {"Connection": "close"}
    prepared = requests.Request(
        "POST", server.url + "/legacy/", data=data, auth=("__token__", token), headers=headers,
        files={"content": (dist.filename, dist.content, "application/octet-stream")},
    ).prepare()
    if start is not None:
        start.wait()
    with requests.Session() as session:
        response = session.send(prepared, timeout=120)
    return Answer(response.status_code, response.text)


def upload_at_once(server: Server, token: str, dists: list[Dist]) -> list[Answer]:
    """Each of ``dists`` from a thread of its own, all posted at the same moment (the bodies
    are encoded first, so the requests leave together)."""
    start = threading.Barrier(len(dists))
    with ThreadPoolExecutor(max_workers=len(dists)) as pool:
        return list(pool.map(lambda dist: upload(server, token, dist, start=start), dists))


@contextmanager
def server_database(kind: str) -> Iterator[dict[str, str]]:
    """The environment giving a server its database: SQLite in its data directory ("sqlite"),
    or a PostgreSQL database of its own on the suite's PostgreSQL server ("postgresql";
    skipped when none answers)."""
    if kind == "sqlite":
        yield {}
        return
    with fresh_postgres_database() as url:
        yield {"RELATCH_DATABASE_URL": url}
