from django.urls import URLPattern

app_name = "selfrecovery"
urlpatterns: list[URLPattern] = []
