from django.urls import path

from relatch.index.tokens import views

app_name = "tokens"
urlpatterns = [
    path("", views.token_list, name="list"),
    path("new/", views.create, name="create"),
    path("<int:token_id>/revoke/", views.revoke, name="revoke"),
]
