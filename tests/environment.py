"""Loaded as a pytest plugin (``-p tests.environment``) before pytest-django reads the settings,
which are computed once from the environment: a private data directory (signing key, outbox)
and the base URL the test client uses."""

import os
import tempfile

os.environ.setdefault("RELATCH_DATA_DIR", tempfile.mkdtemp(prefix="relatch-test-"))
os.environ.setdefault("RELATCH_SECRET_KEY", "test-secret-key-" + "x" * 40)
os.environ.setdefault("RELATCH_BASE_URL", "http://testserver")
