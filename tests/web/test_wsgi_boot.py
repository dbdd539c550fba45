"""A web worker imports every view while it boots, so no visitor waits for the imports.

Django reads the URLconf, and with it every view module, on the first request; in a fresh
gunicorn worker that first request took about 1.3 s (bench/index_pages.py saw a p99 of over a
second whenever a worker had just started). ``relatch.wsgi`` loads the URLconf itself.
"""

import subprocess
import sys
from pathlib import Path

from tests.serving import relatch_env

# Run in a fresh interpreter: the test process has long since loaded every URLconf.
PROBE = """
import sys
import relatch.wsgi
from django.urls import get_resolver
print("urlconf loaded:", "urlconf_module" in vars(get_resolver()))
print("views imported:", "relatch.index.simple.views" in sys.modules)
"""


def test_importing_the_wsgi_application_loads_every_view(tmp_path: Path) -> None:
    done = subprocess.run(  # noqa: S603 (our own interpreter and a fixed script)
        [sys.executable, "-c", PROBE],
        env=relatch_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert "urlconf loaded: True" in done.stdout
    assert "views imported: True" in done.stdout
