from django.urls import path

from relatch.accounts.passwords import views

app_name = "passwords"
urlpatterns = [
    path("password/", views.change, name="change"),
    # Every reset path starts with /account/reset/: the log filter redacts what follows.
    path("reset/", views.reset_request, name="reset"),
    path(
        "reset/<str:uidb64>/set-password/",
        views.reset_set_password,
        name="reset_set_password",
    ),
    path("reset/<str:uidb64>/<str:token>/", views.reset_link, name="reset_link"),
]
