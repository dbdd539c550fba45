from django.apps import AppConfig


class RecoveryConfig(AppConfig):
    name = "relatch.recovery"
    label = "recovery"
    verbose_name = "Account recovery"
