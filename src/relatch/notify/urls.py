from django.urls import path

from relatch.notify import views

app_name = "dev"
urlpatterns = [
    path("outbox/", views.outbox, name="outbox"),
    path("outbox/<str:name>/", views.outbox_message, name="outbox_message"),
    path("outbox/<str:name>/html/", views.outbox_message_html, name="outbox_message_html"),
]
