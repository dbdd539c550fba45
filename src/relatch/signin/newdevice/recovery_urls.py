from django.urls import path

from relatch.mfa.selfservice import urls as selfservice_urls
from relatch.signin.newdevice import views

# Mounted at /account/recovery/. A self-service recovery starts here, from the check-your-mail
# page (it needs this browser's partial sign-in); its status and cancel pages are mfa's.
app_name = "selfrecovery"
urlpatterns = [
    path("start/", views.start_recovery, name="start"),
    *selfservice_urls.urlpatterns,
]
