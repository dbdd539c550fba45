"""Forms of the management pages: they parse; the services decide."""

from django import forms

from relatch.index.manage.releases import MAX_YANK_REASON
from relatch.index.models import Role


class InviteForm(forms.Form):
    username = forms.CharField(
        label="Username", max_length=50,
        error_messages={"required": "Enter the username of the person to invite."},
    )
    kind = forms.ChoiceField(
        label="Role", choices=Role.Kind.choices, initial=Role.Kind.MAINTAINER,
        help_text="Maintainers upload; owners also manage members and releases.",
    )


class RoleForm(forms.Form):
    kind = forms.ChoiceField(label="Role", choices=Role.Kind.choices)


class YankForm(forms.Form):
    reason = forms.CharField(
        label="Reason (optional)", required=False, max_length=MAX_YANK_REASON,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Installers show it to people who install this exact version.",
        error_messages={
            "max_length": f"The reason has at most {MAX_YANK_REASON} characters.",
        },
    )


class DeleteReleaseForm(forms.Form):
    confirmation = forms.CharField(
        label="Type the version to confirm", max_length=100,
        error_messages={"required": "Type the version to confirm. Nothing was deleted."},
    )
