"""The WSGI application ``relatch serve`` runs (gunicorn ``relatch.wsgi:application``).

Installer requests (index pages, files, PyPI's JSON) take a lean path that skips the
browser-session middleware; see ``relatch.index.simple.lean``.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "relatch.settings")
_full = get_wsgi_application()  # sets Django up: must come before the lean handler is built

from relatch.index.simple.lean import InstallerFastPath, InstallerHandler  # noqa: E402

application = InstallerFastPath(full=_full, lean=InstallerHandler())
