from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "relatch.accounts"
    label = "accounts"
    verbose_name = "Accounts"
