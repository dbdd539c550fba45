"""Forms of the staff desk: they parse; the services decide."""

from typing import Any

from django import forms

from relatch.accounts.models import User
from relatch.index.models import Project
from relatch.index.queries import find_project_by_typed_name
from relatch.recovery.desk.lookup import MAX_SEARCH, SEARCH_HELP, has_control_characters
from relatch.recovery.desk.services import MAX_MESSAGE, MAX_REASON
from relatch.recovery.models import ProofKind, State

MAX_AGE_DAYS = 3650
NO_CONTROL_CHARACTERS = ("No username or address has control characters (such as a tab or a "
                         "line break): type it again without them.")


class QueueFilterForm(forms.Form):
    state = forms.ChoiceField(
        label="State", required=False,
        choices=[("", "Open requests"), *State.choices, ("all", "Every state")],
        error_messages={"invalid_choice": "Pick a state from the list."},
    )
    older_than = forms.IntegerField(
        label="Older than (days)", required=False, min_value=0, max_value=MAX_AGE_DAYS,
        error_messages={"invalid": "Enter a whole number of days.",
                        "min_value": "Enter 0 days or more.",
                        "max_value": f"Enter at most {MAX_AGE_DAYS} days."},
    )
    owns_projects = forms.ChoiceField(
        label="Account owns projects", required=False,
        choices=[("", "Either"), ("yes", "Yes"), ("no", "No")],
        error_messages={"invalid_choice": "Pick yes, no or either."},
    )
    mine = forms.BooleanField(label="Assigned to me", required=False)


def _reason_field(label: str, required_message: str) -> forms.CharField:
    return forms.CharField(
        label=label, max_length=MAX_REASON, widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": required_message,
                        "max_length": f"The reason has at most {MAX_REASON} characters."},
    )


class AssignForm(forms.Form):
    assignee = forms.ModelChoiceField(
        label="Assign to", required=False, to_field_name="username", empty_label="No one",
        queryset=User.objects.filter(is_staff=True, is_active=True).order_by("username"),
        error_messages={"invalid_choice": "Pick a staff member from the list."},
    )


class MessageForm(forms.Form):
    body = forms.CharField(
        label="Message to the requester", max_length=MAX_MESSAGE,
        widget=forms.Textarea(attrs={"rows": 5}),
        error_messages={"required": "Write the message first.",
                        "max_length": f"A message has at most {MAX_MESSAGE} characters."},
    )


class ProofForm(forms.Form):
    kind = forms.ChoiceField(
        label="Proof", choices=ProofKind.choices,
        error_messages={"required": "Pick the kind of proof.",
                        "invalid_choice": "Pick a kind of proof from the list."},
    )
    project = forms.CharField(
        label="Project (for a repository branch)", required=False, max_length=200,
        error_messages={"max_length": "A project name has at most 200 characters."},
    )

    def clean_project(self) -> Project | None:
        name = str(self.cleaned_data.get("project") or "").strip()
        if not name:
            return None
        project = find_project_by_typed_name(name)
        if project is None:
            raise forms.ValidationError("No project has this name.")
        return project

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        wants_project = cleaned.get("kind") == ProofKind.REPO_BRANCH
        if wants_project and not cleaned.get("project") and not self.has_error("project"):
            self.add_error("project", "A branch proof needs one of the account's projects.")
        return cleaned


class DenyForm(forms.Form):
    reason = _reason_field("Why is the request denied?", "Write why the request is denied.")


class OverrideForm(forms.Form):
    reason = _reason_field(
        "Why go on without a proof?", "An override needs a written reason."
    )


class ResumeForm(forms.Form):
    reason = _reason_field("Why is it the owner's request?", "Resuming needs a written reason.")


class LiftBlockForm(forms.Form):
    reason = _reason_field("Why lift the block?", "Lifting a block needs a written reason.")


class UnfreezeForm(forms.Form):
    reason = _reason_field("Why unfreeze the account?", "Unfreezing needs a written reason.")


class CompleteForm(forms.Form):
    """Completion, with the recent changes staff choose to reverse (ids of security events;
    the service reverses only those that ``recent_changes`` offers)."""

    reverse = forms.TypedMultipleChoiceField(
        label="Also reverse these changes", required=False, coerce=int, choices=[],
        widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": "Choose changes from the list (it may have changed: "
                                          "reload the page)."},
    )

    def __init__(self, *args: Any, changes: list[tuple[int, str]] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["reverse"].choices = changes or []  # type: ignore[attr-defined]


class UserSearchForm(forms.Form):
    """The desk's user search: one text, matched as a username, an address or a prefix."""

    q = forms.CharField(
        label="Username or email address", required=False, max_length=MAX_SEARCH,
        help_text=SEARCH_HELP,
        widget=forms.TextInput(attrs={"type": "search", "autocomplete": "off",
                                      "spellcheck": "false"}),
        error_messages={"max_length": f"A username or address has at most {MAX_SEARCH} "
                                      "characters.",
                        "null_characters_not_allowed": NO_CONTROL_CHARACTERS},
    )

    def clean_q(self) -> str:
        query = str(self.cleaned_data.get("q") or "")
        if has_control_characters(query):
            raise forms.ValidationError(NO_CONTROL_CHARACTERS)
        return query
