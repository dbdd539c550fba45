from django.urls import URLPattern

app_name = "totp"
urlpatterns: list[URLPattern] = []
