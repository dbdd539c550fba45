"""Sign-in and re-authentication forms: they parse and bound input; services decide."""

from django import forms

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


class SignInForm(forms.Form):
    identifier = forms.CharField(
        label="Username or email address",
        max_length=254,
        widget=forms.TextInput(
            attrs={"autocomplete": "username", "autocapitalize": "none", "autofocus": True}
        ),
        error_messages={"required": "Enter your username or email address."},
    )
    password = password_field("Password", "current-password")


class ReauthenticateForm(forms.Form):
    password = password_field("Password", "current-password")
