from django.apps import AppConfig


class MfaConfig(AppConfig):
    name = "relatch.mfa"
    label = "mfa"
    verbose_name = "Second factors"
