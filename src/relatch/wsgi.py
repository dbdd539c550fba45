"""The WSGI application ``relatch serve`` runs (gunicorn ``relatch.wsgi:application``).

Installer requests (index pages, files, PyPI's JSON) take a lean path that skips the
browser-session middleware; see ``relatch.index.simple.lean``. Unchanged index pages are
answered from responses kept in the process, without entering Django; see
``relatch.index.simple.response_cache``.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "relatch.settings")
_full = get_wsgi_application()  # sets Django up: must come before the lean handler is built

from django.conf import settings  # noqa: E402
from django.urls import get_resolver  # noqa: E402

from relatch.index.simple.lean import InstallerFastPath, InstallerHandler  # noqa: E402
from relatch.index.simple.response_cache import ResponseCache  # noqa: E402
from relatch.web.path_prefix import PathPrefix  # noqa: E402

# Import every view now, while the worker boots, not on its first request: Django loads the
# URLconf lazily, and that first request waited ~1.3 s for the imports (a p99 of over a
# second in bench/index_pages.py whenever a worker had just started).
get_resolver().url_patterns  # noqa: B018 (evaluated for its import side effect)

application: ResponseCache | PathPrefix
application = ResponseCache(InstallerFastPath(full=_full, lean=InstallerHandler()))
if settings.BASE_PATH:  # served under a path behind a proxy (relatch.web.path_prefix)
    application = PathPrefix(application, settings.BASE_PATH)
