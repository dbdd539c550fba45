from django.urls import path

from relatch.index.manage import status_views, views, visibility_views
from relatch.index.trusted import manage_urls as publishing_urls
from relatch.index.upstream import reserve_views

app_name = "manage"
urlpatterns = [
    path("projects/", views.projects, name="projects"),
    path("reserve/", reserve_views.reserve, name="reserve"),
    path("invitations/", views.invitations, name="invitations"),
    path("invitations/<int:invitation_id>/accept/", views.answer_invitation,
         {"accept": True}, name="accept_invitation"),
    path("invitations/<int:invitation_id>/decline/", views.answer_invitation,
         {"accept": False}, name="decline_invitation"),
    path("project/<str:name>/", views.project, name="project"),
    path("project/<str:name>/invite/", views.invite, name="invite"),
    path("project/<str:name>/invitations/<int:invitation_id>/revoke/", views.revoke_invitation,
         name="revoke_invitation"),
    path("project/<str:name>/roles/<int:role_id>/change/", views.change_role,
         name="change_role"),
    path("project/<str:name>/roles/<int:role_id>/remove/", views.remove_member,
         name="remove_member"),
    path("project/<str:name>/leave/", views.leave, name="leave"),
    path("project/<str:name>/visibility/", visibility_views.change_visibility,
         name="visibility"),
    path("project/<str:name>/status/", status_views.project_status, name="status"),
    path("project/<str:name>/quarantine/", status_views.quarantine, name="quarantine"),
    path("project/<str:name>/release/<str:version>/yank/", views.yank, name="yank"),
    path("project/<str:name>/release/<str:version>/unyank/", views.unyank, name="unyank"),
    path("project/<str:name>/release/<str:version>/delete/", views.delete_release,
         name="delete_release"),
    *publishing_urls.urlpatterns,
]
