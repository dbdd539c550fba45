from django.urls import path

from relatch.accounts.registration import views

app_name = "registration"
urlpatterns = [
    path("register/", views.register, name="register"),
    path("register/check-your-mail/", views.check_mail, name="check_mail"),
]
