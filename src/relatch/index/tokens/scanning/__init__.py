"""GitHub secret scanning, as a partner (issue 21): GitHub finds a ``relatch-`` token in a
public repository, gist or issue and POSTs it to ``/_/secrets/github/disclose-token``; a real
token is revoked at once and its owner told.

GitHub signs the raw body with an ECDSA P-256 key it publishes (``keys``); an alert whose
signature does not verify changes nothing (``alerts``). The revocation is a service
(``services``); the endpoint (``views``) answers with GitHub's feedback format. Off (404) when
RELATCH_SECRET_SCANNING_KEYS_URL is empty.
"""
