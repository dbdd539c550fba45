from django.urls import include, path

urlpatterns = [
    path("", include("relatch.accounts.overview.urls")),
    path("", include("relatch.accounts.registration.urls")),
    path("", include("relatch.accounts.passwords.urls")),
    path("emails/", include("relatch.accounts.emails.urls")),
    path("sessions/", include("relatch.accounts.sessions.urls")),
]
