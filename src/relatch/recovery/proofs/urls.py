from django.urls import path

from relatch.recovery.proofs import views

app_name = "proofs"

urlpatterns = [
    path("vouch/<int:proof_id>/", views.vouch, name="vouch"),
    # The status token is in the path: "recovery/proof/" is to be redacted from logs.
    path("<int:proof_id>/<str:public_id>/<str:token>/", views.proof_page, name="proof"),
]
