from django.urls import URLPattern

app_name = "mfa"
urlpatterns: list[URLPattern] = []
