from django.apps import AppConfig


class SigninConfig(AppConfig):
    name = "relatch.signin"
    label = "signin"
    verbose_name = "Sign-in"
