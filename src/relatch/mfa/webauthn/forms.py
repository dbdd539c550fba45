"""Forms of the security-key pages. They parse; the services decide."""

from django import forms

from relatch.mfa.webauthn.ceremony import MAX_CREDENTIAL_JSON
from relatch.mfa.webauthn.services import MAX_LABEL_LENGTH, WebAuthnError, clean_label

NO_ANSWER = (
    "Your browser did not send an answer from a security key. Security keys need JavaScript: "
    "turn it on, then try again."
)
TOO_LARGE = "Your browser sent a security key answer that is far too large. Try again."


class LabelField(forms.CharField):
    """A key's name, spaces collapsed; the length is counted after that (the service's rule)."""

    def __init__(self) -> None:
        super().__init__(
            label="Name of the key",
            help_text="So you can tell your keys apart, e.g. “blue YubiKey” or “laptop”.",
            error_messages={"required": "Give the key a name, such as “blue YubiKey”."},
            widget=forms.TextInput(
                attrs={"autocomplete": "off", "maxlength": str(MAX_LABEL_LENGTH)}
            ),
        )

    def clean(self, value: object) -> str:
        text = super().clean(value)
        try:
            return clean_label(text)
        except WebAuthnError as refusal:
            raise forms.ValidationError(refusal.message, code=refusal.reason) from refusal


class AddKeyForm(forms.Form):
    """A name for the new key, and the browser's answer (filled in by webauthn.js)."""

    label = LabelField()
    credential = forms.CharField(
        widget=forms.HiddenInput,
        max_length=MAX_CREDENTIAL_JSON,
        error_messages={"required": NO_ANSWER, "max_length": TOO_LARGE},
    )


class RenameKeyForm(forms.Form):
    label = LabelField()
