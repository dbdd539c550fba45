"""Read tokens for tests: as rows in this test's database, or in a running server's.

Tokens are made by ``create_token``, which asks for a second factor (its own tests cover
that); tests of reading only need the row, so these write it as the service stores it.
"""

import base64
from datetime import datetime

from relatch.accounts.models import User
from relatch.index.models import APIToken, Project
from relatch.index.tokens import primitive
from tests.serving import Server


def make_token(user: User, *, purpose: str = APIToken.Purpose.READ,
               project: Project | None = None, expires_at: datetime | None = None,
               revoked_at: datetime | None = None) -> str:
    """The text of a new token of ``user`` (stored as create_token stores it)."""
    text = primitive.new_token()
    APIToken.objects.create(
        user=user, name=f"{purpose} token", identifier=text.identifier,
        secret_digest=primitive.digest_secret(text.secret), purpose=purpose, project=project,
        expires_at=expires_at, revoked_at=revoked_at,
    )
    return text.text


def basic(username: str, password: str) -> str:
    """An Authorization header value, as pip and uv send it."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def token_header(token: str) -> str:
    return basic("__token__", token)


# For a live server: run in ``relatch shell -c``; prints the token's text.
_SHELL_TOKEN = (
    "from relatch.accounts.models import User; from relatch.index.models import APIToken; "
    "from relatch.index.tokens import primitive; t = primitive.new_token(); "
    "APIToken.objects.create(user=User.objects.get(username={username!r}), name='ci', "
    "identifier=t.identifier, secret_digest=primitive.digest_secret(t.secret), "
    "purpose='read'); print(t.text)"
)


def server_read_token(server: Server, username: str) -> str:
    """A read token (all the account's projects, no expiry) of ``username`` on ``server``."""
    done = server.relatch("shell", "-c", _SHELL_TOKEN.format(username=username))
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip().splitlines()[-1]
    primitive.parse_token(token)  # raises if the shell printed anything else
    return token
