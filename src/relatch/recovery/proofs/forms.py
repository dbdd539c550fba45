"""Forms of the proof pages: parse and bound the input; the services decide."""

from django import forms

from relatch.accounts.models import Email

SECRET_MAX = 1000


class ApiTokenForm(forms.Form):
    token = forms.CharField(label="An API token of the account", max_length=SECRET_MAX,
                            strip=True, widget=forms.PasswordInput(render_value=False))


class PasswordForm(forms.Form):
    password = forms.CharField(label="The account's current password", max_length=SECRET_MAX,
                               strip=False, widget=forms.PasswordInput(render_value=False))


class CodeForm(forms.Form):
    code = forms.RegexField(label="The 6-digit code from the mail", regex=r"^\s*[0-9]{6}\s*$",
                            max_length=20, error_messages={"invalid": "Enter the 6 digits."})


class AddressForm(forms.Form):
    """Choose which verified address of the account gets the code; shown masked."""

    address = forms.TypedChoiceField(label="Send a code to", coerce=int,
                                     widget=forms.RadioSelect)

    def __init__(self, *args: object, emails: list[Email], masked: dict[int, str],
                 **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.emails = {e.pk: e.address for e in emails}
        self.fields["address"].choices = [(pk, masked[pk]) for pk in self.emails]  # type: ignore[attr-defined]

    def chosen_address(self) -> str:
        return self.emails[self.cleaned_data["address"]]
