from django.apps import AppConfig


class IndexConfig(AppConfig):
    name = "relatch.index"
    label = "index"
    verbose_name = "Package index"

    def ready(self) -> None:
        from relatch.index.queries import owns_any_project
        from relatch.mfa.policy import answer_project_ownership

        answer_project_ownership(owns_any_project)
