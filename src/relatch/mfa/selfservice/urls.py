from django.urls import path

from relatch.mfa.selfservice import views

# Mounted at /account/recovery/: the mailed link MUST stay /account/recovery/cancel/<token>/
# (that prefix is redacted in the logs).
app_name = "selfrecovery"
urlpatterns = [
    path("start/", views.start, name="start"),
    path("status/", views.status, name="status"),
    path("cancel/<str:token>/", views.cancel, name="cancel"),
]
