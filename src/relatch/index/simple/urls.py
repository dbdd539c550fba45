"""Installer-facing URLs: the simple index, files, and PyPI's JSON API."""

from django.urls import path

from relatch.index.simple import views

app_name = "simple"
urlpatterns = [
    path("simple/", views.index, name="index"),
    path("simple/<str:name>/", views.project, name="project"),
    path("files/<path:path>", views.download, name="file"),
    path("pypi/<str:name>/json", views.pypi_project, name="pypi-project"),
    path("pypi/<str:name>/<str:version>/json", views.pypi_release, name="pypi-release"),
]
