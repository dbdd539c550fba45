from django.apps import AppConfig
from django.core import checks


class NotifyConfig(AppConfig):
    name = "relatch.notify"
    label = "notify"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from relatch.notify.checks import removed_attempts_setting

        checks.register(removed_attempts_setting)
