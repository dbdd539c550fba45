"""The mail queue's staff pages, under /staff/ (namespace "staffmail")."""

from django.urls import path

from relatch.notify.staff import views

app_name = "staffmail"
urlpatterns = [
    path("mail/", views.mail_queue, name="queue"),
    path("mail/<int:outgoing_id>/", views.mail_message, name="message"),
]
