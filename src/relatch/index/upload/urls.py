from django.urls import URLPattern

app_name = "upload"
urlpatterns: list[URLPattern] = []
