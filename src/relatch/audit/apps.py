from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "relatch.audit"
    label = "audit"
    verbose_name = "Audit"
