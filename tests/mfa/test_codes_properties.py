"""Hostile input against the second factors' parsers (issue 7 §3), by hypothesis: the
authenticator app's 6-digit codes, recovery codes, and the sealed TOTP secret read back from
the database.

Reading a code forgives how people type (case, spaces, dashes, look-alikes) and nothing else;
whatever arrives is either the canonical code or the documented refusal (None for a TOTP code,
MalformedCodeError for a recovery code, SecretUnreadableError for a sealed secret).
"""

import base64
import re
from datetime import UTC, datetime

from hypothesis import example, given, settings
from hypothesis import strategies as st

from relatch.mfa.recovery_codes.primitive import (
    ALPHABET,
    CODE_LENGTH,
    DASHES,
    IDENTIFIER_LENGTH,
    MAX_INPUT_LENGTH,
    SECRET_LENGTH,
    MalformedCodeError,
    RecoveryCodeText,
    parse_code,
)
from relatch.mfa.totp.primitive import (
    MAX_CODE_INPUT,
    SecretUnreadableError,
    code_at,
    match_step,
    new_secret,
    normalize_code,
    seal,
    unseal,
)
from tests.full_checks import FULL, property_settings

PROPERTIES = property_settings(short=300)

SEPARATORS = " \t\u00a0\u3000-\u2010\u2212"
TRICKY = "0123456789Oo lI\u0660\u0663\uff10\u00b9\u0131\u017f-_.\u2013\n\x00"
typed = st.text(st.sampled_from(TRICKY) | st.characters(), max_size=40)

# -- authenticator app codes -----------------------------------------------------------------

six_digits = st.text(st.sampled_from("0123456789"), min_size=6, max_size=6)


@PROPERTIES
@given(typed)
@example("١٢٣٤٥٦")  # Arabic-Indic digits: str.isdigit() is True, but no app shows them
@example("１２３４５６")  # full-width digits
@example("123456\n")  # "$" in a regex would match before the newline
def test_a_totp_code_is_six_ascii_digits_or_none(text):
    code = normalize_code(text)
    if code is None:
        return
    assert re.fullmatch(r"[0-9]{6}", code, flags=re.ASCII)
    assert normalize_code(code) == code  # idempotent
    assert len(text) <= MAX_CODE_INPUT


@PROPERTIES
@given(code=six_digits, cuts=st.lists(st.tuples(st.integers(0, 6), st.sampled_from(
    [" ", "-", "  ", "\t", " - ", "\u00a0"])), max_size=3))
def test_a_totp_code_reads_through_the_spaces_and_dashes_people_type(code, cuts):
    text = code
    for at, separator in sorted(cuts, reverse=True):
        text = text[:at] + separator + text[at:]
    assert normalize_code(f" {text} ") == code


@settings(PROPERTIES, max_examples=500 if FULL else 30)
@given(step=st.integers(1, 2**31), offset=st.integers(-1, 1))
def test_the_code_of_a_step_matches_that_step(step, offset):
    secret = new_secret()
    code = code_at(secret, step + offset)
    now = datetime.fromtimestamp(step * 30 + 15, tz=UTC)
    found = match_step(secret=secret, code=code, now=now, window=1)
    assert found is not None
    # The newest matching step; an equal code at another step is a (1 in a million) tie.
    assert found.offset >= offset


# -- recovery codes --------------------------------------------------------------------------

symbols = st.text(st.sampled_from(ALPHABET), min_size=CODE_LENGTH, max_size=CODE_LENGTH)
codes = symbols.map(lambda s: RecoveryCodeText(s[:IDENTIFIER_LENGTH], s[IDENTIFIER_LENGTH:]))


@PROPERTIES
@given(codes)
def test_a_recovery_code_reads_back_as_shown(code):
    assert parse_code(code.formatted) == code
    assert len(code.secret) == SECRET_LENGTH


@PROPERTIES
@given(code=codes, lower=st.booleans(), look_alikes=st.booleans(),
       cuts=st.lists(st.tuples(st.integers(0, CODE_LENGTH), st.sampled_from(sorted(
           {*DASHES, " ", "\t", "\u00a0"}))), max_size=6))
def test_a_recovery_code_forgives_case_separators_and_look_alikes(code, lower, look_alikes,
                                                                   cuts):
    text = code.identifier + code.secret
    if look_alikes:
        text = text.replace("0", "O").replace("1", "I")
    for at, separator in sorted(cuts, reverse=True):
        text = text[:at] + separator + text[at:]
    if lower:
        text = text.lower()
    if len(text) <= MAX_INPUT_LENGTH:
        assert parse_code(text) == code


@PROPERTIES
@given(typed | codes.map(lambda c: c.formatted.lower().replace("-", " ")))
@example("ıııı-ıııı-ıııı-ıııı-ıııı")  # dotless i: upper() makes it "I", which reads as 1
@example("ſſſſ-ſſſſ-ſſſſ-ſſſſ-ſſſſ")  # long s: upper() makes it "S"
@example("UUUU-UUUU-UUUU-UUUU-UUUU")  # U is left out of the alphabet
@example("0" * 20 + "\x00")
def test_any_text_is_a_canonical_code_or_a_malformed_code_error(text):
    try:
        code = parse_code(text)
    except MalformedCodeError as refusal:
        assert refusal.message
        return
    symbols_read = code.identifier + code.secret
    assert len(symbols_read) == CODE_LENGTH
    assert set(symbols_read) <= set(ALPHABET)
    assert text.isascii() or all(not c.isascii() and (c.isspace() or c in DASHES)
                                 for c in text if not c.isascii())
    assert parse_code(code.formatted) == code  # idempotent


# -- the sealed TOTP secret ------------------------------------------------------------------


@settings(PROPERTIES, max_examples=500 if FULL else 50)
@given(bound_to=st.text(max_size=20), other=st.text(max_size=20))
def test_a_sealed_secret_opens_only_where_it_was_bound(bound_to, other):
    secret = new_secret()
    sealed = seal(secret, bound_to=bound_to)
    assert unseal(sealed, bound_to=bound_to) == secret
    if other != bound_to:
        try:
            unseal(sealed, bound_to=other)
        except SecretUnreadableError:
            pass
        else:
            raise AssertionError("a secret opened under another binding")


@PROPERTIES
@given(st.text(max_size=120) | st.text(max_size=120).map("v1:".__add__)
       | st.binary(max_size=60).map(lambda b: "v1:" + base64.urlsafe_b64encode(b).decode()))
def test_a_damaged_sealed_secret_is_refused_clearly(sealed):
    """A row edited by hand, truncated or from another install: SecretUnreadableError (the
    page says what to do), never a crash deep in base64 or AES."""
    try:
        unseal(sealed, bound_to="user:1")
    except SecretUnreadableError as refusal:
        assert str(refusal)
    else:
        raise AssertionError("garbage opened as a secret")
