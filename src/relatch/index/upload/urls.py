"""The upload API twine talks to: POST /legacy/."""

from django.urls import path

from relatch.index.upload import views

app_name = "upload"
urlpatterns = [
    path("", views.upload, name="legacy"),
]
