"""GitHub secret scanning, as its partner does it (issue 21): GitHub finds a ``relatch-``
token published somewhere and POSTs it, signed, to ``/_/secrets/github/disclose-token``.

A real HTTPS key server runs on loopback (certificate from ``tests.tls.TestCA``, trusted
through SSL_CERT_FILE, as an operator's CA would be); the test signs each alert with an EC
P-256 key it made, exactly as GitHub signs (ECDSA / SHA-256 over the raw body, DER, base64).
Nothing in Relatch is mocked: its fetch, TLS check, signature check and revocation are real.
A real alert revokes the token (row, event, the mail that arrived); a forged one changes
nothing.
"""

import base64
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.test import Client, TestCase
from django.utils import timezone

from relatch.accounts.models import Email, User
from relatch.audit.models import EventKind, SecurityEvent
from relatch.index.models import APIToken
from relatch.index.tokens import primitive, services
from relatch.index.tokens.scanning import keys
from tests.conftest import run_pending_tasks
from tests.index.test_tokens import service_token
from tests.index.test_tokens_hygiene import minted_token
from tests.mfa.factor_rows import add_app
from tests.tls import TestCA

ENDPOINT = "/_/secrets/github/disclose-token"
KIND = "relatch_api_token"
FOUND_AT = "https://github.com/alice/sample-pkg/blob/abc123/.github/workflows/release.yml"
LEAKED = EventKind.API_TOKEN_LEAKED


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def sign(key: ec.EllipticCurvePrivateKey, body: bytes) -> str:
    """As GitHub signs an alert: ECDSA P-256 over SHA-256 of the raw body, DER, base64."""
    return base64.b64encode(key.sign(body, ec.ECDSA(hashes.SHA256()))).decode()


@dataclass
class KeyServer:
    """GitHub's ``/meta/public_keys/secret_scanning`` on https://localhost:PORT."""

    ca: TestCA
    keys: dict[str, ec.EllipticCurvePrivateKey] = field(default_factory=dict)
    fetches: int = 0
    url: str = ""

    def document(self) -> bytes:
        return json.dumps({"public_keys": [
            {"key_identifier": kid, "key": pem(key), "is_current": n == len(self.keys) - 1}
            for n, (kid, key) in enumerate(self.keys.items())
        ]}).encode()

    @contextmanager
    def running(self) -> Iterator["KeyServer"]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802  (the name http.server calls)
                server.fetches += 1
                body = server.document()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.socket = self.ca.server_context().wrap_socket(httpd.socket, server_side=True)
        self.url = f"https://localhost:{httpd.server_address[1]}/meta/public_keys/secret_scanning"
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            httpd.shutdown()
            httpd.server_close()


@pytest.fixture(scope="module")
def ca() -> TestCA:
    return TestCA()


@pytest.fixture
def github(ca: TestCA, settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[KeyServer]:
    """GitHub's key server, trusted by Relatch through SSL_CERT_FILE, with one current key."""
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.ca_file))
    keys.forget_keys()
    with KeyServer(ca, {"github-1": new_key()}).running() as server:
        settings.SECRET_SCANNING_KEYS_URL = server.url
        yield server
    keys.forget_keys()


@pytest.fixture
def alice(user: User) -> User:
    add_app(user)
    Email.objects.create(user=user, address="alice@work.example", verified=True,
                         verified_at=timezone.now())
    Email.objects.create(user=user, address="maybe@example.net", verified=False)
    return user


def send(body: bytes, headers: dict[str, str]) -> Any:
    """POST as GitHub does: no cookies, no CSRF token (the client enforces CSRF checks)."""
    client = Client(enforce_csrf_checks=True)
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(ENDPOINT, body, content_type="application/json", headers=headers)
    run_pending_tasks()
    return response


def alert_body(*tokens: str, url: str = FOUND_AT) -> bytes:
    return json.dumps([{"token": t, "type": KIND, "url": url, "source": "content"}
                       for t in tokens]).encode()


def signed(server: KeyServer, body: bytes, kid: str = "github-1") -> dict[str, str]:
    return {"Github-Public-Key-Identifier": kid,
            "Github-Public-Key-Signature": sign(server.keys[kid], body)}


def untouched(row: APIToken) -> bool:
    row.refresh_from_db()
    return row.revoked_at is None and row.revoked_because == ""


# --- A real alert --------------------------------------------------------------------------


def test_a_signed_alert_revokes_the_token_and_tells_its_owner_at_once(
    github: KeyServer, alice: User, mail: Any
) -> None:
    row, text = service_token(alice, name="release workflow")
    mail.clear()
    body = alert_body(text)
    response = send(body, signed(github, body))

    assert response.status_code == 200
    assert response.json() == [{"token_raw": text, "token_type": KIND, "label": "true_positive"}]
    row.refresh_from_db()
    assert row.revoked_at is not None
    assert row.revoked_because == APIToken.RevokedBecause.LEAKED
    with pytest.raises(services.TokenRefusedError, match="revoked"):
        services.authenticate_token(raw=text)
    event = SecurityEvent.objects.get(kind=LEAKED)
    assert event.user == alice
    assert (event.details["token_id"], event.details["url"]) == (row.pk, FOUND_AT)
    assert event.details["reporter"] == "GitHub"
    assert sorted(str(m["To"]) for m in mail.messages) == ["alice@example.org",
                                                          "alice@work.example"]
    message = mail.last("alice@work.example")
    assert str(message["Subject"]).startswith("Urgent: an API token of your Relatch account "
                                              "was published")
    body_text = mail.text(message)
    assert 'the API token "release workflow"' in body_text
    assert f"Found at: {FOUND_AT}" in body_text
    assert "Relatch has revoked it" in body_text
    assert "/account/history/" in body_text and "recent uploads" in body_text
    assert text.split(".")[1] not in body_text + mail.html(message)  # never the secret
    assert github.fetches == 1


def test_a_batch_labels_each_match_and_revokes_only_real_tokens(
    github: KeyServer, alice: User, make_user: Any, mail: Any
) -> None:
    real, real_text = service_token(alice, name="real")
    bob = make_user(username="bob", email="bob@example.org")
    add_app(bob)
    gone, gone_text = service_token(bob, name="already revoked")
    services.revoke_token(request=None, user=bob, token_id=gone.pk)
    minted = minted_token(alice)
    minted_text = primitive.new_token()
    APIToken.objects.filter(pk=minted.pk).update(
        identifier=minted_text.identifier,
        secret_digest=primitive.digest_secret(minted_text.secret))
    wrong_secret = f"{real_text.split('.')[0]}.{primitive.new_token().secret}"
    unknown = primitive.new_token().text
    mail.clear()
    sent = [real_text, real_text, wrong_secret, unknown, "relatch-not-a-token", gone_text,
            minted_text.text]
    body = alert_body(*sent)
    response = send(body, signed(github, body))

    assert response.status_code == 200
    labels = [item["label"] for item in response.json()]
    assert labels == ["true_positive", "true_positive", "false_positive", "false_positive",
                      "false_positive", "true_positive", "true_positive"]
    assert [item["token_raw"] for item in response.json()] == sent
    real.refresh_from_db()
    minted.refresh_from_db()
    assert (real.revoked_because, minted.revoked_because) == ("leaked", "leaked")
    gone.refresh_from_db()
    assert gone.revoked_because == "owner"  # already revoked: left as it was
    # Listed twice, revoked once: one event and one mail per address for each real token.
    assert sorted(e.details["name"] for e in SecurityEvent.objects.filter(kind=LEAKED)) == [
        minted.name, "real"]
    assert [str(m["To"]) for m in mail.messages].count("alice@work.example") == 2
    assert mail.to("bob@example.org") == []


# --- Forged alerts -------------------------------------------------------------------------


def _forged(github: KeyServer, text: str, case: str) -> tuple[bytes, dict[str, str]]:
    body = alert_body(text)
    headers = signed(github, body)
    if case == "another key":
        headers["Github-Public-Key-Signature"] = sign(new_key(), body)
    elif case == "body changed after signing":
        body = alert_body(text, url="https://example.com/elsewhere")
    elif case == "signature of another body":
        headers["Github-Public-Key-Signature"] = sign(github.keys["github-1"], b"[]")
    elif case == "unknown key identifier":
        headers["Github-Public-Key-Identifier"] = "attacker-1"
    elif case == "no signature":
        del headers["Github-Public-Key-Signature"]
    elif case == "no key identifier":
        del headers["Github-Public-Key-Identifier"]
    elif case == "signature not base64":
        headers["Github-Public-Key-Signature"] = "not base64!"
    elif case == "signature garbage":
        headers["Github-Public-Key-Signature"] = base64.b64encode(b"\x30\x02\x01").decode()
    return body, headers


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("another key", 403),
        ("body changed after signing", 403),
        ("signature of another body", 403),
        ("unknown key identifier", 403),
        ("no signature", 400),
        ("no key identifier", 400),
        ("signature not base64", 400),
        ("signature garbage", 403),
    ],
)
def test_a_forged_alert_changes_nothing(
    github: KeyServer, alice: User, mail: Any, case: str, status: int
) -> None:
    row, text = service_token(alice)
    mail.clear()
    body, headers = _forged(github, text, case)
    response = send(body, headers)
    assert response.status_code == status
    assert isinstance(response.json()["detail"], str)
    assert text not in response.text
    assert untouched(row)
    assert not SecurityEvent.objects.filter(kind=LEAKED).exists()
    assert mail.messages == []
    services.authenticate_token(raw=text)  # still works


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b'{"token": "x"}', 400),
        (b'[{"type": "relatch_api_token"}]', 400),
        (b'[{"token": 12}]', 400),
        (b'[{"token": "x", "url": ["a"]}]', 400),
        (b"\xff\xfe", 400),
        (json.dumps([{"token": "x"}] * 1001).encode(), 413),
    ],
)
def test_a_signed_body_in_another_format_changes_nothing(
    github: KeyServer, alice: User, body: bytes, status: int
) -> None:
    row, _ = service_token(alice)
    response = send(body, signed(github, body))
    assert response.status_code == status
    assert untouched(row)
    assert not SecurityEvent.objects.filter(kind=LEAKED).exists()


def test_an_oversized_body_is_refused_unread(github: KeyServer, alice: User) -> None:
    row, text = service_token(alice)
    body = alert_body(text, url="https://x.example/" + "a" * (1024 * 1024))
    response = send(body, signed(github, body))
    assert response.status_code == 413
    assert untouched(row)


def test_only_post(github: KeyServer, db: None) -> None:
    assert Client().get(ENDPOINT).status_code == 405


# --- Keys ----------------------------------------------------------------------------------


def test_a_rotated_key_is_fetched_once_and_unknown_ones_at_most_once_a_minute(
    github: KeyServer, alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, first_text = service_token(alice, name="first")
    body = alert_body(first_text)
    assert send(body, signed(github, body)).status_code == 200
    assert github.fetches == 1
    # GitHub rotates: the new key is unknown to Relatch's cache, so it reads the keys again.
    monkeypatch.setattr(keys, "MIN_GAP", 0.0)
    github.keys["github-2"] = new_key()
    second, second_text = service_token(alice, name="second")
    body = alert_body(second_text)
    assert send(body, signed(github, body, "github-2")).status_code == 200
    assert github.fetches == 2
    second.refresh_from_db()
    assert second.revoked_because == "leaked"
    # Made-up identifiers: one read per minute at most, whatever the number of alerts (the
    # read for github-2 was just now, so none of these reads again).
    monkeypatch.setattr(keys, "MIN_GAP", 60.0)
    for n in range(5):
        headers = signed(github, body, "github-2")
        headers["Github-Public-Key-Identifier"] = f"made-up-{n}"
        assert send(body, headers).status_code == 403
    assert github.fetches == 2


def test_keys_from_a_server_relatch_does_not_trust_are_not_used(
    github: KeyServer, alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the test CA in SSL_CERT_FILE the TLS check fails: 503 (GitHub retries), and
    nothing changes."""
    monkeypatch.setenv("SSL_CERT_FILE", str(TestCA().ca_file))  # another CA
    row, text = service_token(alice)
    body = alert_body(text)
    response = send(body, signed(github, body))
    assert response.status_code == 503
    assert "send the alert again later" in response.json()["detail"]
    assert untouched(row)
    assert github.fetches == 0


def test_the_endpoint_is_off_without_a_keys_url(
    github: KeyServer, alice: User, settings: Any
) -> None:
    settings.SECRET_SCANNING_KEYS_URL = ""
    row, text = service_token(alice)
    body = alert_body(text)
    assert send(body, signed(github, body)).status_code == 404
    assert untouched(row)
    assert github.fetches == 0


@pytest.mark.parametrize(
    "document",
    [b"not json", b'{"public_keys": "x"}', b'{"public_keys": [{"key_identifier": "a"}]}'],
)
def test_a_key_document_without_usable_keys_is_refused(document: bytes) -> None:
    with pytest.raises(keys.KeysUnavailableError):
        keys.parse_keys(document)


def test_only_p256_keys_are_taken() -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = ec.generate_private_key(ec.SECP384R1())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    p256 = new_key()
    document = json.dumps({"public_keys": [
        {"key_identifier": "p384", "key": pem(other)},  # type: ignore[arg-type]
        {"key_identifier": "rsa", "key": rsa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo,
        ).decode()},
        {"key_identifier": "p256", "key": pem(p256)},
    ]}).encode()
    assert list(keys.parse_keys(document)) == ["p256"]
