"""``index.tokens.takeback.revoke_every_token``: a recovery's completion revokes every token of
the account, a "this wasn't me" after it the ones made since (DESIGN §5)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from relatch.index.models import APIToken
from relatch.index.tokens.takeback import revoke_every_token

pytestmark = pytest.mark.django_db


def token(user, name, *, age=timedelta(0), revoked=False):
    now = timezone.now()
    return APIToken.objects.create(user=user, name=name, identifier=f"{user.pk}-{name}",
                                   secret_digest="0" * 64, created_at=now - age,
                                   revoked_at=now - age if revoked else None)


def live(user):
    return set(APIToken.objects.filter(user=user, revoked_at__isnull=True)
               .values_list("name", flat=True))


def test_every_live_token_of_the_account_is_revoked(user, make_user):
    bob = make_user(username="bob")
    token(user, "ci")
    token(user, "old", age=timedelta(days=90))
    earlier = token(user, "gone", revoked=True, age=timedelta(days=1))
    token(bob, "ci")
    assert revoke_every_token(user=user) == 2
    assert live(user) == set() and live(bob) == {"ci"}
    assert APIToken.objects.get(pk=earlier.pk).revoked_at == earlier.revoked_at  # kept


def test_since_revokes_only_the_tokens_made_from_then_on(user):
    token(user, "before", age=timedelta(days=2))
    token(user, "after")
    assert revoke_every_token(user=user, since=timezone.now() - timedelta(days=1)) == 1
    assert live(user) == {"before"}
