# Placeholder routes so the base layout resolves; replaced by the real views.
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.urls import path


@login_not_required
def _placeholder(request: HttpRequest) -> HttpResponse:
    return HttpResponse("Not built yet", status=501)


app_name = "emails"
urlpatterns = [
    path("", _placeholder, name="manage"),
]
