"""A second factor's answer as a form: an app code, a recovery code or a security key's answer.

They bound and parse what was typed or sent; services decide. The sign-in's second step,
re-authentication and the recovery proofs all use them.
"""

from django import forms

from relatch.mfa.recovery_codes import primitive as recovery_primitive
from relatch.mfa.totp import primitive as totp_primitive

# An assertion (authenticator data, client data, signature, user handle) is well under 4 KB;
# anything much larger is not from a security key and is refused before it is parsed.
MAX_CREDENTIAL_LENGTH = 16_000
APP_CODE_MESSAGE = "Enter the 6-digit code your authenticator app shows now."


class CodeInput(forms.TextInput):
    """A text input that never writes back what was typed: a code (right or nearly right)
    does not reappear in a page after it was sent."""

    def format_value(self, value: object) -> str | None:
        return None


class AppCodeForm(forms.Form):
    code = forms.CharField(
        label="Code from your authenticator app",
        max_length=totp_primitive.MAX_CODE_INPUT,
        widget=CodeInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "autocapitalize": "none",
                "spellcheck": "false",
            }
        ),
        error_messages={"required": APP_CODE_MESSAGE, "max_length": APP_CODE_MESSAGE},
    )

    def clean_code(self) -> str:
        code = str(self.cleaned_data["code"])
        if totp_primitive.normalize_code(code) is None:
            raise forms.ValidationError(APP_CODE_MESSAGE)
        return code


class RecoveryCodeForm(forms.Form):
    code = forms.CharField(
        label="Recovery code",
        max_length=recovery_primitive.MAX_INPUT_LENGTH,
        widget=CodeInput(
            attrs={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}
        ),
        error_messages={
            "required": "Enter one of your recovery codes.",
            "max_length": recovery_primitive.MALFORMED_MESSAGE,
        },
    )

    def clean_code(self) -> str:
        code = str(self.cleaned_data["code"])
        try:
            recovery_primitive.parse_code(code)
        except recovery_primitive.MalformedCodeError as error:
            raise forms.ValidationError(error.message) from error
        return code


class SecurityKeyForm(forms.Form):
    credential = forms.CharField(
        max_length=MAX_CREDENTIAL_LENGTH,
        widget=forms.HiddenInput,
        error_messages={
            "required": "Your browser sent no answer from a security key. Press the button "
            "and follow your browser's prompt (this needs JavaScript).",
            "max_length": "That answer is too large to come from a security key.",
        },
    )
