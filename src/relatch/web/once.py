"""Forms that act once: the page carries a one-time token that the first submit consumes, so a
double click or a resent POST cannot mint a second API token or a second set of codes."""

import secrets

from django import forms
from django.http import HttpRequest


class OneTimeForm(forms.Form):
    form_token = forms.CharField(max_length=64, widget=forms.HiddenInput)


def issue_form_token(request: HttpRequest, *, key: str) -> str:
    """The token for the form named ``key``; one per session until a submit uses it."""
    token = request.session.get(key)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(16)
        request.session[key] = token
    return token


def use_form_token(request: HttpRequest, *, key: str) -> bool:
    """True for the first POST carrying the session's token for ``key``, which it consumes."""
    form = OneTimeForm(request.POST)
    expected = request.session.get(key)
    if not (form.is_valid() and isinstance(expected, str)):
        return False
    sent = str(form.cleaned_data["form_token"]).encode()
    if not secrets.compare_digest(sent, expected.encode()):  # bytes: any text, no TypeError
        return False
    del request.session[key]
    return True
