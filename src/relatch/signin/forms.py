"""Sign-in and re-authentication forms: they parse and bound input; services decide."""

from typing import Any

from django import forms

from relatch.accounts.passwords.forms import password_field


class SignInForm(forms.Form):
    identifier = forms.CharField(
        label="Username or email address",
        max_length=254,
        widget=forms.TextInput(
            attrs={
                # "webauthn": the browser may offer passkeys in this field's autofill.
                "autocomplete": "username webauthn",
                "autocapitalize": "none",
                "autofocus": True,
            }
        ),
        error_messages={"required": "Enter your username or email address."},
    )
    password = password_field("Password", "current-password")

    def __init__(self, *args: Any, prefill: str = "", **kwargs: Any) -> None:
        """``prefill``: the name "Can't sign in?" was given (?username=); the password then
        has the keyboard."""
        super().__init__(*args, **kwargs)
        if prefill and not self.is_bound:
            self.initial["identifier"] = prefill[:254]
            self.fields["identifier"].widget.attrs.pop("autofocus", None)
            self.fields["password"].widget.attrs["autofocus"] = True


class ReauthenticateForm(forms.Form):
    password = password_field("Password", "current-password")
