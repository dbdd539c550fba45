"""The publishing pages, mounted under /manage/ by ``relatch.index.manage.urls`` (names in its
``manage`` namespace)."""

from django.urls import path

from relatch.index.trusted import views

urlpatterns = [
    path("project/<str:name>/publishing/", views.publishing, name="publishing"),
    path("project/<str:name>/publishing/<int:publisher_id>/remove/", views.remove_publisher,
         name="remove_publisher"),
    path("publishing/", views.pending_publishing, name="pending_publishing"),
    path("publishing/<int:publisher_id>/remove/", views.remove_pending_publisher,
         name="remove_pending_publisher"),
]
