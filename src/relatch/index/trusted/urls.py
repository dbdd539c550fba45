"""The OIDC token exchange, mounted at /_/oidc/ as on PyPI (namespace "oidc")."""

from django.urls import path

from relatch.index.trusted import exchange_views

app_name = "oidc"
urlpatterns = [
    path("audience", exchange_views.audience, name="audience"),
    path("mint-token", exchange_views.mint_token, name="mint-token"),
    path("burn-token", exchange_views.burn, name="burn-token"),
]
