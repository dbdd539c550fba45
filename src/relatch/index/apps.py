from django.apps import AppConfig


class IndexConfig(AppConfig):
    name = "relatch.index"
    label = "index"
    verbose_name = "Package index"
