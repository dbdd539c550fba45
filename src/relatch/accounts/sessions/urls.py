from django.urls import path

from relatch.accounts.sessions import views

app_name = "sessions"
urlpatterns = [
    path("", views.session_list, name="list"),
    path("<int:session_id>/end/", views.end, name="end"),
    path("end-others/", views.end_others, name="end_others"),
    path("devices/<int:device_id>/forget/", views.forget, name="forget_device"),
    path("devices/forget-others/", views.forget_others, name="forget_other_devices"),
]
