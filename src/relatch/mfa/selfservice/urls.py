from django.urls import path

from relatch.mfa.selfservice import views

# Mounted at /account/recovery/ in the "selfrecovery" namespace, after the page that starts a
# recovery (the sign-in app's: it needs the half-done sign-in of this browser). The mailed link
# MUST stay /account/recovery/cancel/<token>/ (that prefix is redacted in the logs).
urlpatterns = [
    path("status/", views.status, name="status"),
    path("cancel/<str:token>/", views.cancel, name="cancel"),
]
