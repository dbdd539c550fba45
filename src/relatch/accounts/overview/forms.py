"""Forms of the account page."""

import unicodedata

from django import forms

from relatch.accounts.overview.services import NAME_MAX_LENGTH


class NameForm(forms.Form):
    name = forms.CharField(
        label="Name",
        max_length=NAME_MAX_LENGTH,
        required=False,
        help_text=f"Shown on your projects. Optional; at most {NAME_MAX_LENGTH} characters.",
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
        error_messages={
            "max_length": "A name can have at most %(limit_value)d characters "
            "(this one has %(show_value)d).",
        },
    )

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"]
        # Control characters (newlines, escapes) could forge lines wherever the name is shown.
        if any(unicodedata.category(c) == "Cc" for c in name):
            raise forms.ValidationError("A name cannot contain line breaks or control characters.")
        return name
