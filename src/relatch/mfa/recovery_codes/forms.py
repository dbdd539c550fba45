"""Forms of the recovery-codes pages. They parse; the services decide."""

from django import forms
from django.core.exceptions import ValidationError

from relatch.mfa.recovery_codes import primitive


class CodeInput(forms.TextInput):
    """A text box that never sends a typed code back in the page (a refused form is shown
    again empty): secrets do not appear in pages after they were first shown (DESIGN §7)."""

    def format_value(self, value: object) -> str | None:
        return None


class RecoveryCodeForm(forms.Form):
    """One recovery code, as a person types it (case, spaces and dashes do not matter)."""

    code = forms.CharField(
        label="One of your recovery codes",
        # The field takes more than a code may be, so an overlong paste gets the clear
        # "too long" message of the parser instead of a generic one.
        max_length=primitive.MAX_INPUT_LENGTH * 4,
        strip=True,
        help_text=f"For example {primitive.EXAMPLE}. Dashes, spaces and case do not matter.",
        error_messages={
            "required": "Enter one of your recovery codes.",
            "max_length": f"That is too long for a recovery code. {primitive.MALFORMED_MESSAGE}",
        },
        widget=CodeInput(
            attrs={
                "autocomplete": "off",
                "autocapitalize": "characters",
                "spellcheck": "false",
                "inputmode": "text",
            }
        ),
    )

    def clean_code(self) -> str:
        code: str = self.cleaned_data["code"]
        try:
            primitive.parse_code(code)
        except primitive.MalformedCodeError as malformed:
            raise ValidationError(malformed.message, code="malformed") from malformed
        return code


