"""Rate limits work while another thread is still importing the Redis client.

limits looks the client up in sys.modules and reads its ``__version__``. Django's Redis cache
imports it lazily too, so on a web process's first requests one thread could find it
half-imported by another: "The minimum version of 3.0 for 'redis' could not be found. Found
version: 0.0.0", a 500 (tests/test_load.py caught one on PostgreSQL + Redis).
"""

import subprocess
import sys
from pathlib import Path

from tests.serving import relatch_env

# A fresh interpreter, where nothing has imported redis yet. A finder holds the first import of
# redis half-done (the module already in sys.modules, its code not yet run) until a timer
# lets it finish; meanwhile another thread builds the Redis rate-limit storage.
PROBE = """
import importlib.abc, importlib.machinery, sys, threading
import django

django.setup()
release = threading.Event()

class HeldLoader(importlib.abc.Loader):
    def __init__(self, real): self.real = real
    def create_module(self, spec): return self.real.create_module(spec)
    def exec_module(self, module):
        release.wait(10)
        self.real.exec_module(module)

class HoldRedis(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "redis":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        spec.loader = HeldLoader(spec.loader)
        return spec

sys.meta_path.insert(0, HoldRedis())
threading.Thread(target=lambda: __import__("redis"), daemon=True).start()
threading.Timer(1.0, release.set).start()
while "redis" not in sys.modules:
    pass
from relatch.accounts import ratelimit
storage, _ = ratelimit._limiter("redis://127.0.0.1:6379/15")
print("storage:", type(storage).__name__)
"""


def test_the_redis_storage_is_made_while_another_thread_imports_redis(tmp_path: Path) -> None:
    done = subprocess.run(  # noqa: S603 (our own interpreter and a fixed script)
        [sys.executable, "-c", PROBE],
        env=relatch_env(tmp_path, DJANGO_SETTINGS_MODULE="relatch.settings"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr[-2000:]
    assert "storage: RedisStorage" in done.stdout
