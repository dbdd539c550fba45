"""The requester's forms: what they still have, the request itself, the contact code and a
message to staff. They parse and check; the services act."""

from django import forms

from relatch.accounts.emails.services import MAX_ADDRESS_LENGTH, EmailChangeError, normalize_address
from relatch.accounts.usernames import MAX_USERNAME_LENGTH
from relatch.recovery.requester.routing import StillHas
from relatch.recovery.requester.services import MAX_MESSAGE_LENGTH

# Filled in only by form-filling bots (hidden by CSS, skipped by screen readers and Tab).
HONEYPOT_FIELD = "homepage"


def _still_has_field(label: str) -> forms.MultipleChoiceField:
    return forms.MultipleChoiceField(
        label=label, choices=StillHas.choices, required=False,
        widget=forms.CheckboxSelectMultiple,
    )


class StillHasForm(forms.Form):
    has = _still_has_field("What do you still have?")


class RecoveryRequestForm(forms.Form):
    username = forms.CharField(
        max_length=MAX_USERNAME_LENGTH,
        help_text="The username of the account you cannot get into.",
        widget=forms.TextInput(attrs={"autocomplete": "username", "autocapitalize": "none",
                                      "spellcheck": "false"}),
        error_messages={"required": "Enter the account's username."},
    )
    contact_email = forms.EmailField(
        label="Contact address", max_length=MAX_ADDRESS_LENGTH,
        help_text="An address you can read now. We send a code to it; staff write to it.",
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
        error_messages={"required": "Enter an address where we can reach you."},
    )
    still_has = _still_has_field("What do you still have?")
    description = forms.CharField(
        label="What happened?", max_length=MAX_MESSAGE_LENGTH,
        help_text="Only staff read this. Project names and dates you remember help them.",
        widget=forms.Textarea(attrs={"rows": 6, "maxlength": MAX_MESSAGE_LENGTH}),
        error_messages={"required": "Tell us briefly what happened."},
    )
    agreed = forms.BooleanField(
        label="I agree to the code of conduct and will treat staff with respect.",
        error_messages={"required": "Agree to the code of conduct to file a request."},
    )
    acknowledged = forms.BooleanField(
        label="I understand that review takes time, and that a waiting period may apply.",
        error_messages={"required": "Acknowledge that review takes time to file a request."},
    )
    homepage = forms.CharField(
        label="Leave this field empty", required=False,
        widget=forms.TextInput(attrs={"tabindex": "-1", "autocomplete": "off"}),
    )

    def clean_contact_email(self) -> str:
        try:
            return normalize_address(self.cleaned_data["contact_email"])
        except EmailChangeError as exc:
            raise forms.ValidationError(exc.message) from exc


class ContactCodeForm(forms.Form):
    code = forms.RegexField(
        regex=r"^\s*[0-9]{6}\s*$", max_length=12, label="Code from the mail",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
        error_messages={"required": "Enter the 6-digit code from the mail.",
                        "invalid": "The code is 6 digits."},
    )


class MessageForm(forms.Form):
    body = forms.CharField(
        label="Message to staff", max_length=MAX_MESSAGE_LENGTH,
        widget=forms.Textarea(attrs={"rows": 4, "maxlength": MAX_MESSAGE_LENGTH}),
        error_messages={"required": "Write a message first."},
    )
