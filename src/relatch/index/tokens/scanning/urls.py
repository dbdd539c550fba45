from django.urls import path

from relatch.index.tokens.scanning import views

app_name = "secret_scanning"
urlpatterns = [
    path("github/disclose-token", views.disclose_token, name="github_disclose_token"),
]
