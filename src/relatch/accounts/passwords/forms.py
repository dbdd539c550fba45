"""Password change, reset request and new-password forms (NIST N30, OWASP FP7)."""

from typing import Any

from django import forms
from django.contrib.auth.password_validation import (
    password_validators_help_texts,
    validate_password,
)
from django.core.exceptions import ValidationError

from relatch.accounts.models import User
from relatch.accounts.passwords.validation import MAX_PASSWORD_LENGTH


def password_field(label: str, autocomplete: str) -> forms.CharField:
    """A password input that keeps spaces (passphrases) and allows paste and managers (N30)."""
    return forms.CharField(
        label=label,
        strip=False,
        max_length=MAX_PASSWORD_LENGTH,
        widget=forms.PasswordInput(attrs={"autocomplete": autocomplete}),
        error_messages={"max_length": "A password has at most %(limit_value)d characters."},
    )


class NewPasswordForm(forms.Form):
    """The new password twice, under the same rules as at registration; the reason is shown."""

    new_password1 = password_field("New password", "new-password")
    new_password2 = password_field("New password again", "new-password")

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        self.user = user
        super().__init__(*args, **kwargs)
        self.fields["new_password1"].help_text = " ".join(password_validators_help_texts())

    def clean_new_password1(self) -> str:
        password: str = self.cleaned_data["new_password1"]
        validate_password(password, self.user)
        return password

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        first, second = cleaned.get("new_password1"), cleaned.get("new_password2")
        if first and second and first != second:
            self.add_error("new_password2", ValidationError("The two passwords differ."))
        return cleaned


class PasswordChangeForm(NewPasswordForm):
    current_password = password_field("Current password", "current-password")
    field_order = ("current_password", "new_password1", "new_password2")


class ResetRequestForm(forms.Form):
    identifier = forms.CharField(
        label="Username or email address",
        max_length=254,
        widget=forms.TextInput(attrs={"autocomplete": "username", "autocapitalize": "none"}),
        error_messages={"required": "Enter your username or email address."},
    )
