"""Recovery codes as text and as hashes (NIST N2, N22, N23; ASVS 6.5.2, 6.5.3)."""

import math
import re
import secrets

import pytest
from django.core.exceptions import ImproperlyConfigured

from relatch.mfa.recovery_codes import primitive
from relatch.mfa.recovery_codes.primitive import (
    ALPHABET,
    MalformedCodeError,
    RecoveryCodeText,
    hash_secret,
    new_code_set,
    parse_code,
    verify_secret,
)

SYMBOL = f"[{ALPHABET}]"
SHOWN_FORM = re.compile(rf"^{SYMBOL}{{4}}(-{SYMBOL}{{4}}){{4}}$")
CODE = "7KQ2-MX9D-R4TB-HN3W-PZ8E"


def test_each_code_carries_at_least_64_bits_of_secret():
    """NIST N2 / ASVS 6.5.3: >= 64 bits, counting only the secret part (the identifier is
    stored in clear, so it adds nothing an attacker of the database must guess)."""
    assert len(set(ALPHABET)) == len(ALPHABET) == 32
    assert primitive.SECRET_LENGTH * math.log2(len(ALPHABET)) >= 64
    assert len(ALPHABET) ** primitive.SECRET_LENGTH >= 2**64
    assert primitive.SECRET_BITS == 80
    for code in new_code_set():
        assert len(code.secret) == primitive.SECRET_LENGTH


@pytest.mark.parametrize("group", [{"0", "O"}, {"1", "I", "L"}, {"U", "V"}])
def test_the_alphabet_has_no_look_alikes(group):
    """Written for humans: of each group of look-alikes at most one symbol is in a code."""
    assert len(group & set(ALPHABET)) <= 1


def test_the_alphabet_leaves_out_o_i_l_and_u():
    assert not set("OILU") & set(ALPHABET)
    assert set(ALPHABET) <= set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def test_a_set_has_eight_distinct_codes_with_distinct_identifiers():
    codes = new_code_set()
    assert len(codes) == 8
    assert len({c.formatted for c in codes}) == 8
    assert len({c.identifier for c in codes}) == 8
    for code in codes:
        assert SHOWN_FORM.match(code.formatted), code.formatted
        assert code.formatted.startswith(code.identifier + "-")


def test_sets_are_fresh_each_time():
    seen = {c.formatted for _ in range(50) for c in new_code_set()}
    assert len(seen) == 400


def test_codes_come_from_the_secrets_module(monkeypatch):
    """NIST N2/N22: an approved random generator (Python's ``secrets``, the OS CSPRNG). The
    symbols follow what ``secrets.choice`` returns, so no other generator is involved."""
    drawn = iter(ALPHABET * 20)
    monkeypatch.setattr(secrets, "choice", lambda seq: next(drawn))
    [code] = new_code_set(1)
    assert code.formatted == "0123-4567-89AB-CDEF-GHJK"


def test_a_repeated_identifier_is_drawn_again(monkeypatch):
    """Identifiers are unique within a set, so one lookup finds at most one code."""
    symbols = iter("AAAA" + "B" * 16 + "AAAA" + "DDDD" + "E" * 16)
    monkeypatch.setattr(secrets, "choice", lambda seq: next(symbols))
    codes = new_code_set(2)
    assert [c.identifier for c in codes] == ["AAAA", "DDDD"]


def test_repr_never_shows_the_secret():
    code = RecoveryCodeText("ABCD", "EFGHJKMNPQRSTVWX")
    assert "EFGH" not in repr(code)
    assert "ABCD" in repr(code)


@pytest.mark.parametrize(
    "typed",
    [
        CODE,
        CODE.lower(),
        CODE.replace("-", " "),
        CODE.replace("-", ""),
        f"  {CODE}\n",
        "7kq2 mx9d-r4tb  hn3w pz8e",
        CODE.replace("-", "\u2013"),  # an en dash from a word processor
        CODE.replace("-", "\u00a0"),  # a non-breaking space from a PDF
    ],
)
def test_reading_forgives_case_spaces_and_dashes(typed):
    parsed = parse_code(typed)
    assert parsed.formatted == CODE
    assert (parsed.identifier, parsed.secret) == ("7KQ2", "MX9DR4TBHN3WPZ8E")


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("ABO0-1111-2222-3333-4444", "AB00-1111-2222-3333-4444"),
        ("abo0-IiLl-2222-3333-4444", "AB00-1111-2222-3333-4444"),
    ],
)
def test_look_alikes_are_read_as_the_symbol_in_the_alphabet(typed, meant):
    """Deterministic, Crockford's rules: O is 0; I and L are 1."""
    assert parse_code(typed).formatted == meant


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "has 20 letters and digits"),
        (CODE[:-1], "has 20 letters and digits"),
        (CODE + "A", "has 20 letters and digits"),
        ("7KQ2-MX9D-R4TB-HN3W-PZ8U", "never in a code"),  # U is not in the alphabet
        ("7KQ2-MX9D-R4TB-HN3W-PZ8!", "never in a code"),
        ("7KQ2_MX9D_R4TB_HN3W_PZ8E", "never in a code"),
        ("7KQ2-MX9D-R4TB-HN3W-PZ8\u0131", "never in a code"),  # dotless i is not an I
        ("7KQ2-MX9D-R4TB-HN3W-PZ8\uff25", "never in a code"),  # full-width E
        (CODE + " " * 41, "too long"),
        ("A" * 100_000, "too long"),
    ],
)
def test_reading_is_strict_about_length_and_symbols(typed, message):
    with pytest.raises(MalformedCodeError) as refused:
        parse_code(typed)
    assert message in refused.value.message


def test_the_longest_accepted_input_is_64_characters():
    assert parse_code(CODE + " " * 40).formatted == CODE  # 64 characters
    with pytest.raises(MalformedCodeError):
        parse_code(CODE + " " * 41)


def test_secrets_are_hashed_with_salted_argon2id():
    """NIST N23 / ASVS 6.5.2: under 112 bits, so a password hash with a salt of >= 32 bits."""
    first, second = hash_secret("MX9DR4TBHN3WPZ8E"), hash_secret("MX9DR4TBHN3WPZ8E")
    assert first.startswith("argon2$argon2id$")
    assert first != second  # a fresh salt each time
    salt = first.split("$")[-2]
    assert len(salt) * 6 >= 32
    assert "MX9DR4TBHN3WPZ8E" not in first
    assert verify_secret("MX9DR4TBHN3WPZ8E", first)
    assert not verify_secret("MX9DR4TBHN3WPZ8F", first)


def test_a_weaker_first_hasher_is_refused(settings):
    """Never store codes under anything but Argon2id, whatever the hasher list says."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    with pytest.raises(ImproperlyConfigured):
        hash_secret("MX9DR4TBHN3WPZ8E")


def test_the_dummy_check_fails_and_follows_the_configured_hasher(settings):
    """The dummy hash costs what a real one costs: same hasher, same parameters."""
    settings.PASSWORD_HASHERS = ["tests.hashers.FastArgon2idHasher"]
    primitive.dummy_verify()
    dummy = primitive._dummy_hash(tuple(settings.PASSWORD_HASHERS))
    real = hash_secret("MX9DR4TBHN3WPZ8E")
    assert (
        dummy.split("$")[:4]
        == real.split("$")[:4]
        == ["argon2", "argon2id", "v=19", "m=64,t=1,p=1"]
    )
    assert not verify_secret("0" * 16 + "x", dummy)
