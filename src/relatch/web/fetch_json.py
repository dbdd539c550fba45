"""Reading a small JSON document from another service over https, bounded (OIDC issuers'
discovery documents and key sets, GitHub's secret-scanning keys).

No redirects and no proxy or netrc from the environment (a redirect or an injected proxy could
point the fetch elsewhere); the machine's trust store (``ssl.create_default_context`` reads
SSL_CERT_FILE / SSL_CERT_DIR), not a bundled copy; timeouts; a size cap read while streaming,
so a hostile or broken server cannot make a worker hold an unbounded body.
"""

import json
import ssl
from typing import Any

import httpx

TIMEOUT = httpx.Timeout(10.0, connect=5.0)


class FetchError(Exception):
    """The document could not be read; the text says why without echoing what was sent."""


def json_client(*, user_agent: str, timeout: httpx.Timeout = TIMEOUT) -> httpx.Client:
    """An httpx client with the rules above."""
    return httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False,
                        verify=ssl.create_default_context(),
                        headers={"User-Agent": user_agent, "Accept": "application/json"})


def read_body(client: httpx.Client, url: str, *, max_bytes: int) -> bytes:
    """GET ``url``'s body (status 200, at most ``max_bytes``); raise FetchError otherwise."""
    try:
        with client.stream("GET", url) as response:
            if response.status_code != 200:
                raise FetchError(f"{url} answered {response.status_code}")
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    raise FetchError(f"{url} sent more than {max_bytes} bytes")
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        # The class names the failure (ConnectError, a certificate refused, a timeout).
        raise FetchError(f"{type(error).__name__} from {url}") from None
    return bytes(body)


def read_json_object(client: httpx.Client, url: str, *, max_bytes: int) -> dict[str, Any]:
    """``read_body``, parsed: a JSON object, else FetchError."""
    body = read_body(client, url, max_bytes=max_bytes)
    try:
        document = json.loads(body)
    except ValueError:
        raise FetchError(f"{url} did not send JSON") from None
    if not isinstance(document, dict):
        raise FetchError(f"{url} did not send a JSON object")
    return document
