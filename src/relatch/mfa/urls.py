from django.urls import path

from relatch.mfa import views

app_name = "mfa"
urlpatterns = [
    path("", views.overview, name="overview"),
]
