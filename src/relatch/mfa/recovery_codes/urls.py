from django.urls import URLPattern

app_name = "recovery_codes"
urlpatterns: list[URLPattern] = []
