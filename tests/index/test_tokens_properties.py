"""Hostile input against API-token parsing (issue 7 §3), by hypothesis.

A token is pasted, never typed, so reading is strict: exactly ``relatch-<16 of [a-z0-9]>.<43 of
base64url>``. Whatever else arrives (in twine's password, a Bearer header, a proof answer) is a
MalformedTokenError before any lookup, or for the service a TokenRefusedError with a message.
"""

import string

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from relatch.index.models import APIToken
from relatch.index.tokens.primitive import (
    IDENTIFIER_ALPHABET,
    IDENTIFIER_LENGTH,
    MAX_TOKEN_LENGTH,
    PREFIX,
    SECRET_ALPHABET,
    SECRET_LENGTH,
    MalformedTokenError,
    TokenText,
    digest_secret,
    new_token,
    parse_token,
    secret_matches,
)
from relatch.index.tokens.services import TokenRefusedError, authenticate_token, create_token
from tests.full_checks import FULL, property_settings
from tests.mfa.factor_rows import add_app

PROPERTIES = property_settings(short=300)

identifiers = st.text(st.sampled_from(IDENTIFIER_ALPHABET), min_size=IDENTIFIER_LENGTH,
                      max_size=IDENTIFIER_LENGTH)
secrets_ = st.text(st.sampled_from(sorted(SECRET_ALPHABET)), min_size=SECRET_LENGTH,
                   max_size=SECRET_LENGTH)
well_formed = st.builds(TokenText, identifiers, secrets_)
# Near misses: the right shape with one character swapped, dropped or added, and plain text.
near_misses = st.builds(
    lambda token, at, char, how: {
        "swap": token[:at] + char + token[at + 1:],
        "drop": token[:at] + token[at + 1:],
        "add": token[:at] + char + token[at:],
    }[how],
    well_formed.map(lambda t: t.text), st.integers(0, MAX_TOKEN_LENGTH - 1), st.characters(),
    st.sampled_from(["swap", "drop", "add"]),
)
anything = st.text(max_size=80) | near_misses


def is_canonical(raw: str) -> bool:
    """The token grammar, written out independently of the parser."""
    if not raw.startswith(PREFIX):
        return False
    identifier, dot, secret = raw[len(PREFIX):].partition(".")
    return (dot == "." and len(identifier) == IDENTIFIER_LENGTH
            and set(identifier) <= set(IDENTIFIER_ALPHABET)
            and len(secret) == SECRET_LENGTH and set(secret) <= SECRET_ALPHABET)


@PROPERTIES
@given(well_formed)
def test_a_token_reads_back_as_itself(token):
    assert parse_token(token.text) == token
    assert len(token.text) == MAX_TOKEN_LENGTH


@PROPERTIES
@given(anything)
@example(PREFIX + "a" * IDENTIFIER_LENGTH + "." + "A" * (SECRET_LENGTH - 1) + "=")
@example(PREFIX.upper() + "a" * IDENTIFIER_LENGTH + "." + "A" * SECRET_LENGTH)
@example(" " + PREFIX + "a" * IDENTIFIER_LENGTH + "." + "A" * (SECRET_LENGTH - 1))
@example(PREFIX + "\u0430" * IDENTIFIER_LENGTH + "." + "A" * SECRET_LENGTH)  # Cyrillic a
def test_only_the_exact_grammar_is_read_and_nothing_else_raises(raw):
    """Strict: accepted text is exactly a canonical token (and rebuilds to itself); all other
    text is MalformedTokenError, the one documented refusal."""
    try:
        parsed = parse_token(raw)
    except MalformedTokenError:
        assert not is_canonical(raw)
        return
    assert is_canonical(raw)
    assert parsed.text == raw


def test_fresh_tokens_follow_the_grammar():
    for _ in range(200):
        assert is_canonical(new_token().text)


@PROPERTIES
@given(secret=secrets_, other=secrets_)
def test_a_secret_matches_only_its_own_digest(secret, other):
    digest = digest_secret(secret)
    assert secret_matches(secret, digest)
    assert secret_matches(other, digest) is (other == secret)
    # An unknown identifier (no digest) never matches, whatever the secret.
    assert not secret_matches(secret, None)
    assert set(digest) <= set(string.hexdigits.lower()) and len(digest) == 64


@pytest.mark.django_db
@settings(PROPERTIES, max_examples=1000 if FULL else 60,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=anything | well_formed.map(lambda t: t.text))
def test_the_service_refuses_any_text_with_its_message(make_user, raw):
    """Through the database: malformed, unknown or mangled tokens are a TokenRefusedError with
    a message for the user; only the real token authenticates."""
    owner = make_user()
    add_app(owner)
    row, real = create_token(request=None, user=owner, name="ci", project=None, expires_at=None)
    assert authenticate_token(raw=real) == row
    if raw == real:
        return
    with pytest.raises(TokenRefusedError) as refused:
        authenticate_token(raw=raw)
    assert refused.value.message
    assert APIToken.objects.get(pk=row.pk).revoked_at is None
