"""Staff get a desk token from the command line; nobody else does."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from relatch.index.models import APIToken
from relatch.index.tokens.services import authenticate_token
from tests.mfa.factor_rows import add_app

pytestmark = pytest.mark.django_db


def test_staff_with_a_second_factor_get_a_desk_token(make_user):
    dana = make_user(username="dana", is_staff=True)
    add_app(dana)
    out = StringIO()
    call_command("staff_token", "dana", "--name", "desk-cli", stdout=out)
    text = out.getvalue().split()[0]
    token = authenticate_token(raw=text, purpose=APIToken.Purpose.STAFF)
    assert (token.user, token.purpose, token.project) == (dana, "staff", None)


@pytest.mark.parametrize(("staff", "factor", "message"), [
    (False, True, "Only staff"), (True, False, "two-step sign-in"),
])
def test_others_are_refused(make_user, staff, factor, message):
    user = make_user(username="eve", is_staff=staff)
    if factor:
        add_app(user)
    with pytest.raises(CommandError, match=message):
        call_command("staff_token", "eve", "--name", "x", stdout=StringIO())
    assert not APIToken.objects.exists()
