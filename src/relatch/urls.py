from django.urls import include, path

from relatch.accounts.emails.hooks import bounce_hook
from relatch.index.pages import views as index_pages
from relatch.web import views as web_pages

urlpatterns = [
    path("", index_pages.home, name="home"),
    path("conduct/", web_pages.conduct, name="conduct"),
    path("account/", include("relatch.accounts.urls")),
    path("account/", include("relatch.signin.urls")),
    path("account/two-factor/", include("relatch.mfa.urls")),
    path("account/two-factor/app/", include("relatch.mfa.totp.urls")),
    path("account/two-factor/keys/", include("relatch.mfa.webauthn.urls")),
    path("account/two-factor/recovery-codes/", include("relatch.mfa.recovery_codes.urls")),
    path("account/two-factor/check/", include("relatch.mfa.yearly_check.urls")),
    path("account/login/", include("relatch.signin.newdevice.urls")),
    path("account/recovery/", include("relatch.signin.newdevice.recovery_urls")),
    path("recovery/request/", include("relatch.recovery.requester.urls")),
    path("recovery/proof/", include("relatch.recovery.proofs.urls")),
    path("desk/", include("relatch.recovery.desk.urls")),
    path("dev/", include("relatch.notify.urls")),
    path("staff/", include("relatch.notify.staff.urls")),
    path("hooks/bounces", bounce_hook, name="bounce_hook"),
    path("", include("relatch.ops.urls")),  # /health/live, /health/ready, /metrics
    path("api/v1/", include("relatch.api.urls")),
    path("_/oidc/", include("relatch.index.trusted.urls")),
    path("_/secrets/", include("relatch.index.tokens.scanning.urls")),
    # The package index: installers (simple, files, JSON), twine (legacy), people (pages).
    path("", include("relatch.index.simple.urls")),
    path("legacy/", include("relatch.index.upload.urls")),
    path("account/tokens/", include("relatch.index.tokens.urls")),
    path("manage/", include("relatch.index.manage.urls")),
    path("", include("relatch.index.pages.urls")),
]

# A database outage is a 503 with Retry-After, anything else the site's 500 page.
handler500 = "relatch.web.outage.server_error"
