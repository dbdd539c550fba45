from django.apps import AppConfig


class IndexConfig(AppConfig):
    name = "relatch.index"
    label = "index"
    verbose_name = "Package index"

    def ready(self) -> None:
        from relatch.index.queries import owns_any_project
        from relatch.mfa.policy import answer_project_ownership

        answer_project_ownership(owns_any_project)
        self._listen_for_other_hosts()

    @staticmethod
    def _listen_for_other_hosts() -> None:
        # Here, not in the WSGI module: ready() runs in each gunicorn web process after its
        # fork (relatch serve does not preload), and the listener checks itself that it is in
        # one, on PostgreSQL; commands and the worker serve no kept answers and skip it.
        from relatch.index.change_listener import start_in_web_process

        start_in_web_process()
