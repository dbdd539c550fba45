from django.urls import include, path

from relatch.web import views

urlpatterns = [
    path("", views.home, name="home"),
    path("account/", include("relatch.accounts.urls")),
    path("dev/", include("relatch.notify.urls")),
]
