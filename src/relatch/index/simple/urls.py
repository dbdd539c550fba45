from django.urls import URLPattern

app_name = "simple"
urlpatterns: list[URLPattern] = []
