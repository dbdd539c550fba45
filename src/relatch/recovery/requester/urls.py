from django.urls import path

from relatch.recovery.requester import from_signin, views

# Mounted at /recovery/request/: status/ and not-me/ paths carry secrets and are redacted in
# the logs (relatch.web.logging); keep those prefixes.
app_name = "requester"
urlpatterns = [
    path("", views.start_here, name="start_here"),
    path("new/", views.new, name="new"),
    # "I can't use any of these" on the second step of a sign-in.
    path("from-sign-in/", from_signin.from_signin, name="from_signin"),
    path("confirm/", views.confirm, name="confirm"),
    path("filed/", views.filed, name="filed"),
    path("status/<str:public_id>/<str:token>/", views.status, name="status"),
    path("status/<str:public_id>/<str:token>/message/", views.send_message, name="message"),
    path("status/<str:public_id>/<str:token>/cancel/", views.cancel, name="cancel"),
    path("status/<str:public_id>/<str:token>/reopen/", views.reopen, name="reopen"),
    path("not-me/<str:public_id>/<str:token>/", views.not_me, name="not_me"),
]
