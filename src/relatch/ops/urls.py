"""Operators' endpoints, at fixed paths below the site's root (DESIGN §6)."""

from django.urls import path

from relatch.ops import views

app_name = "ops"
urlpatterns = [
    path("health/live", views.live, name="live"),
    path("health/ready", views.ready, name="ready"),
    path("metrics", views.metrics, name="metrics"),
]
