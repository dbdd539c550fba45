from django.urls import path

from relatch.mfa.totp import views

app_name = "totp"
urlpatterns = [
    path("", views.setup, name="setup"),
    path("confirm/", views.confirm, name="confirm"),
    path("remove/", views.remove, name="remove"),
]
