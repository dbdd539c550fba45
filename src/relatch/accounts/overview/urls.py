from django.urls import path

from relatch.accounts.overview import views

app_name = "account"
urlpatterns = [
    path("", views.overview, name="overview"),
    path("name/", views.edit_name, name="name"),
    path("second-address/not-now/", views.dismiss_second_address, name="second_address_dismiss"),
    path("history/", views.history, name="history"),
]
