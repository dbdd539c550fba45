"""Forms of the API-token pages. They parse; the services decide."""

from datetime import UTC, date, datetime, time, timedelta

from django import forms
from django.conf import settings
from django.utils import timezone

from relatch.accounts.models import User
from relatch.index.models import APIToken, Project
from relatch.index.tokens.services import MAX_NAME_LENGTH, projects_for_scope

ALL_PROJECTS = "all"
ON_DATE = "date"
# "Never" is not offered: a token that never expires is the one found in an old CI secret
# years later (issue 21). Existing ones keep working until the unused-token rule stops them.
EXPIRY_DAYS = (30, 90, 180, 366)


def expiry_choices() -> list[tuple[str, str]]:
    """The offered lifetimes within TOKEN_MAX_DAYS, the default among them, and a date."""
    default, longest = settings.TOKEN_DEFAULT_DAYS, settings.TOKEN_MAX_DAYS
    days = sorted({d for d in EXPIRY_DAYS if d <= longest} | {default})
    return [
        (str(d), f"In {d} days" + (" (the default)" if d == default else "")) for d in days
    ] + [(ON_DATE, "On a date I choose")]


# What a token made on the page can do: upload (twine) or read (pip and uv, when reads need
# a sign-in or the project is private). Staff tokens are made elsewhere.
PURPOSE_CHOICES = [
    (APIToken.Purpose.UPLOAD.value, "Upload: publish with twine"),
    (APIToken.Purpose.READ.value, "Read: install with pip or uv (cannot upload)"),
]


class CreateTokenForm(forms.Form):
    """Name, purpose, scope and expiry of a new token."""

    name = forms.CharField(
        label="Name",
        max_length=MAX_NAME_LENGTH,
        strip=True,
        help_text="Where the token will be used, e.g. “GitHub Actions of example-lib”.",
        error_messages={
            "required": "Give the token a name, e.g. where it will be used.",
            "max_length": f"A token name has at most {MAX_NAME_LENGTH} characters.",
        },
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    purpose = forms.ChoiceField(
        label="What it can do",
        choices=PURPOSE_CHOICES,
        initial=APIToken.Purpose.UPLOAD.value,
        # Optional: a form sent from a page older than this field makes an upload token.
        required=False,
        error_messages={"invalid_choice": "Choose upload or read."},
    )
    scope = forms.ChoiceField(
        label="Projects it can reach",
        error_messages={
            "invalid_choice": "Choose all your projects or one project you have a role on.",
            "required": "Choose which projects the token can reach.",
        },
    )
    expiry = forms.ChoiceField(
        label="Expires",
        error_messages={"invalid_choice": "Choose when the token expires."},
    )
    expires_on = forms.DateField(
        label="Expiry date (if you chose a date)",
        required=False,
        help_text="The token stops working at 00:00 UTC on this day.",
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "Enter the date as YYYY-MM-DD."},
    )

    def __init__(self, *args: object, user: User, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.projects = {str(p.pk): p for p in projects_for_scope(user)}
        scope = self.fields["scope"]
        assert isinstance(scope, forms.ChoiceField)
        scope.choices = [(ALL_PROJECTS, "All my projects (and new ones I create)")] + [
            (pk, f"Only {project.name}") for pk, project in self.projects.items()
        ]
        expiry = self.fields["expiry"]
        assert isinstance(expiry, forms.ChoiceField)
        expiry.choices = expiry_choices()
        expiry.initial = str(settings.TOKEN_DEFAULT_DAYS)
        expiry.help_text = (f"At most {settings.TOKEN_MAX_DAYS} days ahead. Make a new token "
                            "when it expires.")

    def clean(self) -> dict[str, object]:
        cleaned = super().clean() or {}
        choice, on = cleaned.get("expiry"), cleaned.get("expires_on")
        if choice == ON_DATE:
            self._check_date(on)
        return cleaned

    def _check_date(self, on: date | None) -> None:
        today = timezone.now().astimezone(UTC).date()
        if on is None:
            if "expires_on" not in self.errors:
                self.add_error("expires_on", "Enter the date the token should expire.")
        elif on <= today:
            self.add_error("expires_on", "The expiry date must be after today.")
        # How far ahead is create_token's rule (TOKEN_MAX_DAYS), the API's too.

    def chosen_project(self) -> Project | None:
        """The project the token is limited to, or None for all projects."""
        return self.projects.get(self.cleaned_data["scope"])

    def chosen_purpose(self) -> str:
        """Upload or read; a form sent without the field (an old page) makes an upload
        token, as before."""
        return str(self.cleaned_data.get("purpose") or APIToken.Purpose.UPLOAD)

    def chosen_expiry(self) -> datetime:
        """When the token stops working."""
        choice = self.cleaned_data["expiry"]
        if choice == ON_DATE:
            return datetime.combine(self.cleaned_data["expires_on"], time.min, tzinfo=UTC)
        return timezone.now() + timedelta(days=int(choice))
