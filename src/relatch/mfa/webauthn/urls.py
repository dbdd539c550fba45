from django.urls import URLPattern

app_name = "webauthn"
urlpatterns: list[URLPattern] = []
