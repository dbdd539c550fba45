from django.urls import path

from relatch.mfa.recovery_codes import views

app_name = "recovery_codes"
urlpatterns = [
    path("", views.manage, name="manage"),
    path("new/", views.generate, name="generate"),
    path("show/", views.show, name="show"),
    path("download/", views.download, name="download"),
    path("confirm/", views.confirm, name="confirm"),
    # Where the sign-in flow sends a user who signed in with a recovery code.
    path("used/", views.replace_after_use, name="replace_after_use"),
]
