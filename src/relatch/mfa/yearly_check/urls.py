from django.urls import path

from relatch.mfa.yearly_check import views

app_name = "recovery_info"
urlpatterns = [
    path("", views.check, name="check"),
    path("confirm/", views.confirm, name="confirm"),
]
