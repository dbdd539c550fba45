from django.urls import URLPattern

app_name = "passwords"
urlpatterns: list[URLPattern] = []
