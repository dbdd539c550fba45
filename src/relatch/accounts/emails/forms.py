"""Forms of the address page. They parse; the services decide."""

from django import forms

from relatch.accounts.emails.services import MAX_ADDRESS_LENGTH


class AddressForm(forms.Form):
    """One email address (adding a new one, or replacing a mistyped one)."""

    address = forms.EmailField(
        label="Email address",
        max_length=MAX_ADDRESS_LENGTH,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
