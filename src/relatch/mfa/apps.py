from django.apps import AppConfig


class MfaConfig(AppConfig):
    name = "relatch.mfa"
    label = "mfa"
    verbose_name = "Second factors"

    def ready(self) -> None:
        """Add the factor items to the account's security check-up (accounts imports no mfa)."""
        from relatch.accounts.overview.checkup import add_checks
        from relatch.mfa.checkup import CHECKS

        add_checks(*CHECKS)
