"""The code field of the authenticator app's pages. It parses; the services decide."""

from django import forms
from django.core.exceptions import ValidationError

from relatch.mfa.totp import primitive
from relatch.mfa.totp.services import MALFORMED


class TotpCodeForm(forms.Form):
    """Six digits from the app; spaces and hyphens between them are allowed."""

    code = forms.CharField(
        label="Code from the app",
        # No max_length: an overlong paste gets the same plain message as any other bad input.
        strip=True,
        error_messages={"required": MALFORMED},
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "autocapitalize": "none",
                "spellcheck": "false",
                "size": "8",
            }
        ),
    )

    def clean_code(self) -> str:
        code = primitive.normalize_code(self.cleaned_data["code"])
        if code is None:
            raise ValidationError(MALFORMED)
        return code
