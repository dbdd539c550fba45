from typing import Any

from django.conf import settings
from django.http import HttpRequest


def site(request: HttpRequest) -> dict[str, Any]:
    """Values every page template may use."""
    return {"base_url": settings.BASE_URL, "outbox_enabled": settings.OUTBOX_ENABLED}
