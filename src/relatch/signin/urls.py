from django.urls import path

from relatch.audit.models import Factor
from relatch.signin import views
from relatch.signin.reauth import views as reauth_views

# Mounted at /account/.
app_name = "signin"
urlpatterns = [
    path("login/", views.login, name="login"),
    path("logout/", views.logout, name="logout"),
    path("login/passkey/", views.passkey, name="passkey"),
    path("login/passkey/options/", views.passkey_options, name="passkey_options"),
    path("reauthenticate/", reauth_views.reauthenticate, name="reauthenticate"),
    # The second half of re-authenticating an account with a second factor.
    path("reauthenticate/factor/", reauth_views.factor_step, name="reauthenticate_factor"),
    path(
        "reauthenticate/factor/app/",
        reauth_views.answer,
        {"factor": Factor.TOTP},
        name="reauthenticate_app",
    ),
    path(
        "reauthenticate/factor/key/",
        reauth_views.answer,
        {"factor": Factor.WEBAUTHN},
        name="reauthenticate_key",
    ),
    path(
        "reauthenticate/factor/recovery-code/",
        reauth_views.answer,
        {"factor": Factor.RECOVERY_CODE},
        name="reauthenticate_code",
    ),
]
