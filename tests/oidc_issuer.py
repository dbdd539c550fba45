"""A real OIDC issuer on loopback: discovery, JWKS and signed CI tokens, over real TLS.

``FakeIssuer`` is the standard library's HTTP server in a thread, wrapped in TLS with a
certificate from ``tests.tls.TestCA``; its ``url`` (``https://localhost:PORT``) is the ``iss``
of every token it signs. Tests sign tokens with ``sign`` over the claims ``github_claims`` /
``gitlab_claims`` build (as GitHub Actions and GitLab CI spell them), rotate its key with
``rotate_key``, and count how often Relatch fetched the discovery document and the JWKS.

It also answers GitHub Actions' token request (``GET /_actions/token?audience=X`` with
``Authorization: bearer <request_token>``), so a real ``uv publish --trusted-publishing
always`` runs as it does inside a workflow: give it ``issuer.actions_env()`` and set
``issuer.next_claims`` to the claims the next requested token carries (``aud`` is the audience
the client asked for).

Only the test's own server is fake: the cryptography, the TLS handshake and PyJWT's checks in
Relatch are the real ones.
"""

import base64
import hashlib
import hmac
import json
import secrets
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from tests.tls import TestCA

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

TOKEN_LIFETIME = 300  # seconds: GitHub's and GitLab's CI tokens live about five minutes


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _sha() -> str:
    return secrets.token_hex(20)


@dataclass
class SigningKey:
    kid: str
    key: PrivateKey
    alg: str  # RS256 or ES256

    def public_jwk(self) -> dict[str, Any]:
        if isinstance(self.key, rsa.RSAPrivateKey):
            jwk = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        else:
            jwk = ECAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.alg, "use": "sig"}


def new_key(alg: str = "RS256") -> PrivateKey:
    """A fresh private key for ``alg`` (RS256: RSA 2048; ES256: P-256)."""
    if alg.startswith(("RS", "PS")):
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


class _QuietServer(ThreadingHTTPServer):
    """Counts failed handshakes (a client that does not trust our CA) instead of printing
    their tracebacks."""

    tls_failures = 0

    def handle_error(self, request: Any, client_address: Any) -> None:
        self.tls_failures += 1


class FakeIssuer:
    """An OIDC issuer on https://localhost:PORT. Use as ``with FakeIssuer(ca).running():``.

    Public knobs for tests:
    - ``keys``: the published keys (kid -> SigningKey); ``current_kid`` signs by default.
    - ``discovery_overrides``: merged into the discovery document (a lying ``issuer``, an
      http ``jwks_uri`` ...); ``jwks_body``: raw bytes served instead of the JWKS.
    - ``discovery_fetches`` / ``jwks_fetches``: how often each was served;
      ``server.tls_failures``: connections that failed (e.g. a client refusing our CA).
    - ``next_claims``: the claims of the next GitHub-Actions-style token request;
      ``token_requests``: the audiences asked for.
    """

    def __init__(self, ca: TestCA, *, host: str = "localhost") -> None:
        self.ca = ca
        self.keys: dict[str, SigningKey] = {}
        self.current_kid = self.add_key()
        self.discovery_overrides: dict[str, Any] = {}
        self.jwks_body: bytes | None = None
        self.discovery_fetches = 0
        self.jwks_fetches = 0
        self.next_claims: dict[str, Any] | None = None
        self.token_requests: list[str] = []
        self.request_token = secrets.token_urlsafe(24)
        self._lock = threading.Lock()
        self.server = _QuietServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        context = ca.server_context(host, "127.0.0.1")
        # The handshake happens in the handler's thread (first read), not in accept(): a
        # client that connects and stalls does not block the server.
        self.server.socket = context.wrap_socket(
            self.server.socket, server_side=True, do_handshake_on_connect=False
        )
        self.port = int(self.server.server_address[1])
        self.host = host
        self.url = f"https://{host}:{self.port}"
        self._thread: threading.Thread | None = None

    # --- keys and signing ------------------------------------------------------------------

    def add_key(self, alg: str = "RS256", *, kid: str | None = None) -> str:
        """Publish a new key in the JWKS (it does not become the default); its kid."""
        kid = kid or f"key-{uuid.uuid4().hex[:12]}"
        self.keys[kid] = SigningKey(kid, new_key(alg), alg)
        return kid

    def rotate_key(self, *, keep_old: bool = False) -> str:
        """A new default key; the old ones leave the JWKS unless ``keep_old``. The new kid."""
        kid = f"key-{uuid.uuid4().hex[:12]}"
        key = SigningKey(kid, new_key("RS256"), "RS256")
        self.keys = {**self.keys, kid: key} if keep_old else {kid: key}
        self.current_kid = kid
        return kid

    def sign(self, claims: dict[str, Any], *, kid: str | None = None,
             key: PrivateKey | bytes | None = None, alg: str = "RS256",
             headers: dict[str, Any] | None = None) -> str:
        """A compact JWT over ``claims``.

        ``kid`` names the header's key id (default: the current key; one not published is
        signed with the current key), ``key`` signs instead of that kid's own key (a forgery
        under a known kid); ``alg`` "none" gives an unsigned
        token and "HS256"/"HS384"/"HS512" an HMAC with ``key`` as the secret (the
        algorithm-confusion attack: pass the issuer's public key PEM). ``headers`` are merged
        into the JOSE header last, so they can lie about anything.
        """
        kid = kid if kid is not None else self.current_kid
        header: dict[str, Any] = {"alg": alg, "typ": "JWT", "kid": kid}
        header.update(headers or {})
        if alg == "none" or alg.startswith("HS"):
            # PyJWT will not make these (it refuses a PEM as an HMAC secret): build them by
            # hand, as an attacker would.
            signing_input = (
                _b64(json.dumps(header, separators=(",", ":")).encode()) + "."
                + _b64(json.dumps(claims, separators=(",", ":")).encode())
            )
            if alg == "none":
                return signing_input + "."
            assert isinstance(key, bytes), "HS* needs key=bytes (the secret)"
            digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384,
                      "HS512": hashlib.sha512}[alg]
            mac = hmac.new(key, signing_input.encode("ascii"), digest).digest()
            return signing_input + "." + _b64(mac)
        # A kid the issuer does not publish is signed with its current key (a token naming a
        # retired or made-up key).
        own = self.keys.get(kid) or self.keys[self.current_kid]
        signer = key if key is not None else own.key
        assert not isinstance(signer, bytes)
        extra = {k: v for k, v in header.items() if k not in {"alg"}}
        return jwt.encode(claims, signer, algorithm=alg, headers=extra)

    def public_pem(self, kid: str | None = None) -> bytes:
        """The PEM of a published key's public half (for the HS256 confusion attack)."""
        key = self.keys[kid or self.current_kid].key
        return key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    # --- claims as the CI providers spell them ---------------------------------------------

    def _times(self, lifetime: int = TOKEN_LIFETIME) -> dict[str, int]:
        now = int(time.time())
        return {"iat": now, "nbf": now, "exp": now + lifetime}

    def github_claims(self, *, repository: str, workflow: str, audience: str,
                      ref: str = "refs/heads/main", environment: str | None = None,
                      repository_id: str = "1001", owner_id: str = "2002",
                      **overrides: Any) -> dict[str, Any]:
        """Claims of a GitHub Actions OIDC token for ``repository`` running
        ``.github/workflows/<workflow>`` at ``ref``. ``overrides`` replace any claim (a value
        of None removes it)."""
        owner = repository.split("/", 1)[0]
        sha = _sha()
        workflow_ref = f"{repository}/.github/workflows/{workflow}@{ref}"
        sub = (f"repo:{repository}:environment:{environment}" if environment
               else f"repo:{repository}:ref:{ref}")
        claims: dict[str, Any] = {
            "jti": str(uuid.uuid4()),
            "sub": sub,
            "aud": audience,
            "ref": ref,
            "sha": sha,
            "repository": repository,
            "repository_owner": owner,
            "repository_owner_id": owner_id,
            "repository_id": repository_id,
            "repository_visibility": "public",
            "run_id": str(secrets.randbelow(10**10)),
            "run_number": "7",
            "run_attempt": "1",
            "runner_environment": "github-hosted",
            "actor": "octocat",
            "actor_id": "583231",
            "workflow": "Release",
            "workflow_ref": workflow_ref,
            "workflow_sha": sha,
            "job_workflow_ref": workflow_ref,
            "job_workflow_sha": sha,
            "head_ref": "",
            "base_ref": "",
            "event_name": "push",
            "ref_type": "branch" if ref.startswith("refs/heads/") else "tag",
            "ref_protected": "false",
            "iss": self.url,
            **self._times(),
        }
        if environment is not None:
            claims["environment"] = environment
        return _apply(claims, overrides)

    def gitlab_claims(self, *, project_path: str, audience: str,
                      ci_config_path: str = ".gitlab-ci.yml", ref: str = "main",
                      environment: str | None = None, project_id: str = "3003",
                      namespace_id: str = "4004", **overrides: Any) -> dict[str, Any]:
        """Claims of a GitLab CI/CD ID token for ``project_path`` running ``ci_config_path``
        on branch ``ref``. ``ci_config_ref_uri`` names this issuer's host, as GitLab names its
        own. ``overrides`` replace any claim (None removes it)."""
        namespace = project_path.rsplit("/", 1)[0]
        sha = _sha()
        ref_path = f"refs/heads/{ref}"
        host = self.url.split("://", 1)[1]
        config_uri = f"{host}/{project_path}//{ci_config_path}@{ref_path}"
        claims: dict[str, Any] = {
            "jti": str(uuid.uuid4()),
            "sub": f"project_path:{project_path}:ref_type:branch:ref:{ref}",
            "aud": audience,
            "namespace_id": namespace_id,
            "namespace_path": namespace,
            "project_id": project_id,
            "project_path": project_path,
            "project_visibility": "public",
            "user_id": "5005",
            "user_login": "maintainer",
            "user_email": "maintainer@example.com",
            "user_access_level": "maintainer",
            "pipeline_id": str(secrets.randbelow(10**9)),
            "pipeline_source": "push",
            "job_id": str(secrets.randbelow(10**10)),
            "ref": ref,
            "ref_type": "branch",
            "ref_path": ref_path,
            "ref_protected": "true",
            "runner_id": "1",
            "runner_environment": "gitlab-hosted",
            "sha": sha,
            "ci_config_ref_uri": config_uri,
            "ci_config_sha": sha,
            "iss": self.url,
            **self._times(),
        }
        if environment is not None:
            claims.update(environment=environment, environment_protected="true",
                          deployment_tier="production")
        return _apply(claims, overrides)

    # --- GitHub Actions' token request, for real clients ------------------------------------

    def actions_env(self) -> dict[str, str]:
        """The environment variables GitHub Actions gives a job with ``id-token: write``."""
        return {
            "GITHUB_ACTIONS": "true",
            "ACTIONS_ID_TOKEN_REQUEST_URL": f"{self.url}/_actions/token?api-version=2.0",
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": self.request_token,
        }

    # --- the documents ----------------------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "jwks_uri": f"{self.url}/.well-known/jwks",
            "subject_types_supported": ["public", "pairwise"],
            "response_types_supported": ["id_token"],
            "claims_supported": ["sub", "aud", "exp", "iat", "iss", "jti", "nbf"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid"],
            **self.discovery_overrides,
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.public_jwk() for key in self.keys.values()]}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, body: bytes,
                      content_type: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _json(self, status: int, data: Any) -> None:
                self._send(status, json.dumps(data).encode())

            def do_GET(self) -> None:  # noqa: N802  (the name http.server calls)
                parts = urlsplit(self.path)
                if parts.path == "/.well-known/openid-configuration":
                    with issuer._lock:
                        issuer.discovery_fetches += 1
                    self._json(200, issuer.discovery())
                elif parts.path == "/.well-known/jwks":
                    with issuer._lock:
                        issuer.jwks_fetches += 1
                    if issuer.jwks_body is not None:
                        self._send(200, issuer.jwks_body)
                    else:
                        self._json(200, issuer.jwks())
                elif parts.path == "/_actions/token":
                    self._token(parse_qs(parts.query))
                else:
                    self._send(404, b"Not Found\n", "text/plain")

            def _token(self, query: dict[str, list[str]]) -> None:
                given = self.headers.get("Authorization", "")
                scheme, _, value = given.partition(" ")
                if scheme.lower() != "bearer" or not hmac.compare_digest(
                    value.encode(), issuer.request_token.encode()
                ):
                    self._json(401, {"message": "Bad credentials"})
                    return
                audience = (query.get("audience") or [""])[0]
                if issuer.next_claims is None:
                    self._json(404, {"message": "the test set no next_claims"})
                    return
                issuer.token_requests.append(audience)
                claims = dict(issuer.next_claims)
                if audience:
                    claims["aud"] = audience
                self._json(200, {"count": 1, "value": issuer.sign(claims)})

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        return Handler

    # --- life -------------------------------------------------------------------------------

    def start(self) -> "FakeIssuer":
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                        name="fake-oidc-issuer")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (again: nothing)."""
        if self._thread is None:
            return
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
        self._thread = None

    @contextmanager
    def running(self) -> Iterator["FakeIssuer"]:
        self.start()
        try:
            yield self
        finally:
            self.stop()


def _apply(claims: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    for name, value in overrides.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


def client_context(ca: TestCA) -> ssl.SSLContext:
    """For a test's own requests to the issuer."""
    return ca.client_context()
