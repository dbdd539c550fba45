from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "relatch.web"
    label = "web"
    verbose_name = "Web"
