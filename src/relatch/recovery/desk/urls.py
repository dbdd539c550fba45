"""The staff desk, under /desk/ (namespace "desk")."""

from django.urls import path

from relatch.recovery.desk import lookup_views, views

app_name = "desk"

urlpatterns = [
    path("", views.queue, name="queue"),
    # Before the request pages: "<str:public_id>/" would take "users" for a request's id.
    path("users/", lookup_views.users, name="users"),
    path("<str:public_id>/", views.detail, name="detail"),
    path("<str:public_id>/assign/", views.assign, name="assign"),
    path("<str:public_id>/assign-me/", views.assign_me, name="assign_me"),
    path("<str:public_id>/message/", views.message, name="message"),
    path("<str:public_id>/proof/", views.request_proof, name="request_proof"),
    path("<str:public_id>/approve/", views.approve, name="approve"),
    path("<str:public_id>/deny/", views.deny, name="deny"),
    path("<str:public_id>/override/", views.override, name="override"),
    path("<str:public_id>/complete/", views.complete, name="complete"),
    path("<str:public_id>/resume/", views.resume, name="resume"),
    path("<str:public_id>/lift-block/", views.lift_block, name="lift_block"),
    path("<str:public_id>/unfreeze/", views.unfreeze, name="unfreeze"),
]
