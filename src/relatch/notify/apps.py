from django.apps import AppConfig


class NotifyConfig(AppConfig):
    name = "relatch.notify"
    label = "notify"
    verbose_name = "Notifications"
