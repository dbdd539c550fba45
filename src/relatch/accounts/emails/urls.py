from django.urls import path

from relatch.accounts.emails import views

app_name = "emails"
urlpatterns = [
    path("", views.manage, name="manage"),
    path("add/", views.add, name="add"),
    path("<int:email_id>/resend/", views.resend, name="resend"),
    path("<int:email_id>/primary/", views.primary, name="primary"),
    path("<int:email_id>/remove/", views.remove, name="remove"),
    path("<int:email_id>/replace/", views.replace, name="replace"),
    # The log filter (web/logging.py) redacts whatever follows /account/emails/verify/.
    path("verify/<str:token>/", views.verify, name="verify"),
    path("verified/", views.verified, name="verified"),
]
