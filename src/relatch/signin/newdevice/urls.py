from django.urls import path

from relatch.audit.models import Factor
from relatch.signin.newdevice import views

# Mounted at /account/login/: the mailed link MUST stay /account/login/confirm/<token>/ (that
# prefix is redacted in the logs).
app_name = "newdevice"
urlpatterns = [
    path("second-step/", views.second_step, name="second_step"),
    path("second-step/app/", views.answer, {"factor": Factor.TOTP}, name="app_code"),
    path("second-step/key/", views.answer, {"factor": Factor.WEBAUTHN}, name="security_key"),
    path(
        "second-step/recovery-code/",
        views.answer,
        {"factor": Factor.RECOVERY_CODE},
        name="recovery_code",
    ),
    path("check-mail/", views.check_mail, name="check_mail"),
    path("confirm/<str:token>/", views.confirm, name="confirm"),
]
