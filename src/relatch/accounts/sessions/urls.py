from django.urls import path

from relatch.accounts.sessions import views

app_name = "sessions"
urlpatterns = [
    path("", views.session_list, name="list"),
    path("<int:session_id>/end/", views.end, name="end"),
    path("end-others/", views.end_others, name="end_others"),
    path("devices/<int:device_id>/end/", views.end_one_device, name="end_device"),
    path("devices/<int:device_id>/rename/", views.rename, name="rename_device"),
    path("devices/end-others/", views.end_all_other_devices, name="end_other_devices"),
    # The trusted-devices table's forms, from before issue 19 merged it with the sessions: a page
    # still open from then ends the device (forgets it and signs it out), as the list now does.
    path("devices/<int:device_id>/forget/", views.end_one_device, name="forget_device"),
    path("devices/forget-others/", views.end_all_other_devices, name="forget_other_devices"),
]
