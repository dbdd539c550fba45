"""The devices page's form: a name for a device. It parses; the services act."""

import unicodedata

from django import forms

from relatch.accounts.models import DEVICE_NAME_MAX_LENGTH


class DeviceNameForm(forms.Form):
    """A device's new name, spaces collapsed; empty gives it back its browser's name."""

    name = forms.CharField(
        required=False,
        error_messages={
            "max_length": f"A device's name has at most {DEVICE_NAME_MAX_LENGTH} characters."
        },
        max_length=DEVICE_NAME_MAX_LENGTH,
    )

    def clean_name(self) -> str:
        name = " ".join(self.cleaned_data["name"].split())
        # Control and format characters (bidi overrides among them) could make a name read as
        # something else on the page.
        if any(unicodedata.category(ch).startswith("C") for ch in name):
            raise forms.ValidationError(
                "A device's name cannot contain control characters.", code="control"
            )
        return name
