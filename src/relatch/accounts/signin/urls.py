from django.urls import path

from relatch.accounts.signin import views

app_name = "signin"
urlpatterns = [
    path("login/", views.login, name="login"),
    path("logout/", views.logout, name="logout"),
    path("reauthenticate/", views.reauthenticate, name="reauthenticate"),
]
