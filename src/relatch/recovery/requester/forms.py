"""The requester's forms: what they still have, the request itself, the contact code and a
message to staff. They parse and check; the services act."""

from typing import Any

from django import forms

from relatch.accounts.emails.services import MAX_ADDRESS_LENGTH, EmailChangeError, normalize_address
from relatch.recovery.models import RecoveryRequest
from relatch.recovery.requester.routing import StillHas
from relatch.recovery.requester.services import MAX_MESSAGE_LENGTH

# Filled in only by form-filling bots (hidden by CSS, skipped by screen readers and Tab).
HONEYPOT_FIELD = "homepage"
# What a request keeps of the name typed (a username, or an address verified on the account).
MAX_ACCOUNT_NAME = RecoveryRequest._meta.get_field("username_claimed").max_length or 50
# The sign-in and reset forms take this much; "Can't sign in?" carries the name on to them.
MAX_IDENTIFIER = 254
_NAME_ATTRS = {"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false"}


def _still_has_field(label: str, choices: list[tuple[str, str]] | None = None
                     ) -> forms.MultipleChoiceField:
    return forms.MultipleChoiceField(
        label=label, choices=choices or StillHas.choices, required=False,
        widget=forms.CheckboxSelectMultiple,
    )


class AccountNameForm(forms.Form):
    """Step 1 of "Can't sign in?": the account, by username or address (never looked up)."""

    account = forms.CharField(
        label="Username or email address", max_length=MAX_IDENTIFIER,
        help_text="Forgot your username? Enter an email address of the account: signing in "
                  "and resetting the password take either.",
        widget=forms.TextInput(attrs={**_NAME_ATTRS, "autofocus": True}),
        error_messages={"required": "Enter the account's username or email address."},
    )


class StillHasForm(forms.Form):
    has = _still_has_field("What do you still have?")


class RecoveryRequestForm(forms.Form):
    username = forms.CharField(
        label="Username or email address", max_length=MAX_ACCOUNT_NAME,
        help_text="The account you cannot get into: its username, or an address verified on it.",
        widget=forms.TextInput(attrs=_NAME_ATTRS),
        error_messages={"required": "Enter the account's username or email address."},
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


# "I can't use any of these" counts the password and mails a code to the account: the
# requester is not asked for either again.
_ALSO_HAS = [(value, label) for value, label in StillHas.choices
             if value not in (StillHas.PASSWORD, StillHas.EMAIL)]
OTHER_ADDRESS = "other"


class FromSigninForm(forms.Form):
    """The request made from the second step of a sign-in (``from_signin``). ``masked``: the
    account's verified addresses as (id, masked address): whoever stole the password must not
    learn them (ASVS 6.3.8), the owner still recognises theirs."""

    contact = forms.ChoiceField(
        label="Where do we write to you?", widget=forms.RadioSelect,
        error_messages={"required": "Choose where we can reach you."},
    )
    other_address = forms.EmailField(
        label="Another address", required=False, max_length=MAX_ADDRESS_LENGTH,
        help_text="Only if you chose “another address”. We mail it a code to confirm it.",
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    still_has = _still_has_field("What else do you still have?", _ALSO_HAS)
    description = RecoveryRequestForm.base_fields["description"]
    agreed = RecoveryRequestForm.base_fields["agreed"]
    acknowledged = RecoveryRequestForm.base_fields["acknowledged"]

    def __init__(self, *args: Any, masked: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = [(str(pk), address) for pk, address in masked]
        field = self.fields["contact"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [*choices, (OTHER_ADDRESS, "Another address, typed below")]

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        if data.get("contact") != OTHER_ADDRESS:
            return data
        address = data.get("other_address")
        if not address:
            self.add_error("other_address", "Type the address, or choose one of the account's.")
            return data
        try:
            data["other_address"] = normalize_address(str(address))
        except EmailChangeError as exc:
            self.add_error("other_address", exc.message)
        return data
