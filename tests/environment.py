"""Loaded as a pytest plugin (``-p tests.environment``) before pytest-django reads the settings,
which are computed once from the environment: a private data directory (signing key, outbox)
and the base URL the test client uses."""

import os
import tempfile

os.environ.setdefault("RELATCH_DATA_DIR", tempfile.mkdtemp(prefix="relatch-test-"))
os.environ.setdefault("RELATCH_SECRET_KEY", "test-secret-key-" + "x" * 40)
os.environ.setdefault("RELATCH_BASE_URL", "http://testserver")
# No test reaches IANA or a registry: the domain check's tests run their own RDAP server on
# loopback; anything else that looked a domain up would find nothing listening here.
os.environ.setdefault("RELATCH_RDAP_BOOTSTRAP", "http://127.0.0.1:9/rdap/dns.json")
# No test reaches pypi.org either: the upstream index is off unless a test names its own
# (tests/index/upstream/ starts one on loopback).
os.environ.setdefault("RELATCH_UPSTREAM", "")
