from django.apps import AppConfig


class MfaConfig(AppConfig):
    name = "relatch.mfa"
    label = "mfa"
    verbose_name = "Second factors"

    def ready(self) -> None:
        """Add the factor items to the account's security check-up (accounts imports no mfa),
        and tell the mail queue's staff pages who has a second factor (notify imports no mfa)."""
        from relatch.accounts.overview.checkup import add_checks
        from relatch.mfa.checkup import CHECKS
        from relatch.mfa.policy import has_second_factor
        from relatch.notify.staff.access import answer_second_factor

        add_checks(*CHECKS)
        answer_second_factor(has_second_factor)
