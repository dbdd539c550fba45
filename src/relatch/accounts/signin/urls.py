from django.urls import path

from relatch.accounts.signin import views
from relatch.mfa.reauth import views as factor_views

app_name = "signin"
urlpatterns = [
    path("login/", views.login, name="login"),
    path("logout/", views.logout, name="logout"),
    path("login/passkey/", views.passkey, name="passkey"),
    path("reauthenticate/", views.reauthenticate, name="reauthenticate"),
    # The second half of re-authenticating an account with a second factor.
    path("reauthenticate/factor/", factor_views.factor_step, name="reauthenticate_factor"),
    path("reauthenticate/factor/app/", factor_views.app_code, name="reauthenticate_app"),
    path("reauthenticate/factor/key/", factor_views.security_key, name="reauthenticate_key"),
    path(
        "reauthenticate/factor/recovery-code/",
        factor_views.recovery_code,
        name="reauthenticate_code",
    ),
]
