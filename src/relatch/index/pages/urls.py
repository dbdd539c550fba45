from django.urls import path

from relatch.index.pages import views

app_name = "pages"
urlpatterns = [
    path("project/<str:name>/", views.project, name="project"),
    path("project/<str:name>/<str:version>/", views.project, name="project_version"),
    path("user/<str:username>/", views.user, name="user"),
]
