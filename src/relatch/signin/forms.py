"""Sign-in and re-authentication forms: they parse and bound input; services decide."""

from django import forms

from relatch.accounts.passwords.forms import password_field


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
