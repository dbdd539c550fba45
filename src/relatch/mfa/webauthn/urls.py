from django.urls import path

from relatch.mfa.webauthn import views

app_name = "webauthn"
urlpatterns = [
    path("", views.key_list, name="list"),
    path("add/", views.add, name="add"),
    path("<int:key_id>/rename/", views.rename, name="rename"),
    path("<int:key_id>/remove/", views.remove, name="remove"),
]
