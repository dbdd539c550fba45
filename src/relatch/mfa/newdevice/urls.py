from django.urls import URLPattern

app_name = "newdevice"
urlpatterns: list[URLPattern] = []
