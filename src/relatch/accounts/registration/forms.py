"""The registration form: parses and checks the fields; the service creates the account."""

from typing import Any

from django import forms
from django.contrib.auth.password_validation import (
    password_validators_help_texts,
    validate_password,
)
from django.core.exceptions import ValidationError

from relatch.accounts.emails.services import (
    MAX_ADDRESS_LENGTH,
    EmailChangeError,
    normalize_address,
)
from relatch.accounts.models import User
from relatch.accounts.passwords.validation import MAX_PASSWORD_LENGTH
from relatch.accounts.registration import policy
from relatch.accounts.usernames import (
    MAX_USERNAME_LENGTH,
    is_username_taken,
    validate_username_format,
)

# A field people never see (hidden by CSS, skipped by screen readers and the Tab key) but form
# -filling bots do: a value in it marks the submission as a bot's.
HONEYPOT_FIELD = "homepage"
USERNAME_TAKEN = "This username is taken. Choose another."


def _password_widget() -> forms.PasswordInput:
    # "new-password" lets password managers offer a strong one; paste is never blocked (NIST N30).
    return forms.PasswordInput(
        attrs={"autocomplete": "new-password", "maxlength": MAX_PASSWORD_LENGTH}
    )


class RegistrationForm(forms.Form):
    username = forms.CharField(
        strip=True,
        help_text="Public. Letters, digits, '.', '_' and '-'; at most 50 characters.",
        widget=forms.TextInput(
            attrs={
                "autocomplete": "username",
                "maxlength": MAX_USERNAME_LENGTH,
                "autocapitalize": "none",
                "spellcheck": "false",
            }
        ),
    )
    name = forms.CharField(
        label="Name (optional)",
        max_length=100,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    email = forms.EmailField(
        label="Email address",
        max_length=MAX_ADDRESS_LENGTH,
        help_text="We send a link to verify it.",
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    password = forms.CharField(
        strip=False, widget=_password_widget(), help_text=" ".join(password_validators_help_texts())
    )
    password_again = forms.CharField(label="Password again", strip=False, widget=_password_widget())
    homepage = forms.CharField(
        label="Leave this field empty",
        required=False,
        widget=forms.TextInput(attrs={"tabindex": "-1", "autocomplete": "off"}),
    )

    def clean_username(self) -> str:
        username: str = self.cleaned_data["username"]
        validate_username_format(username)
        if is_username_taken(username):
            # Usernames are public, so saying one is taken reveals nothing.
            raise ValidationError(USERNAME_TAKEN, code="taken")
        return username

    def clean_email(self) -> str:
        try:
            address = normalize_address(self.cleaned_data["email"])
        except EmailChangeError as exc:
            raise ValidationError(exc.message) from exc
        try:
            policy.refuse_signup(address)  # RELATCH_SIGNUP=domains: only the team's domains
        except policy.SignupRefusedError as refusal:
            raise ValidationError(refusal.message, code="domain") from None
        return address

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        password, again = cleaned.get("password"), cleaned.get("password_again")
        if password and again is not None and password != again:
            self.add_error("password_again", "The two passwords differ. Type the same one twice.")
        if password:
            self._check_password(password, cleaned)
        return cleaned

    def _check_password(self, password: str, cleaned: dict[str, Any]) -> None:
        """Length, common-password list and resemblance to the username or name, each
        with its reason (NIST N30)."""
        candidate = User(username=cleaned.get("username", ""), name=cleaned.get("name", ""))
        try:
            validate_password(password, user=candidate)
        except ValidationError as exc:
            self.add_error("password", exc)
