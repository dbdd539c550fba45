"""The TOTP primitive against an independent implementation (Debian's oathtool), and the
sealing of secrets at rest (issue 3 §1)."""

import base64
import subprocess
from datetime import UTC, datetime, timedelta

import pytest

from relatch.mfa.totp import primitive

# A fixed instant in the middle of a 30-second step: no test races a step boundary.
NOON = datetime(2026, 11, 21, 10, 0, 15, tzinfo=UTC)
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()  # RFC 6238 appendix B


def oathtool(secret: str, at: datetime) -> str:
    """The code oathtool computes for ``secret`` at ``at`` (SHA-1, 6 digits, 30 s)."""
    when = at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    result = subprocess.run(
        ["oathtool", "--totp", "-b", "--now", when, secret],
        capture_output=True, text=True, check=True,
    )
    return result.stdout.strip()


def test_rfc_6238_vectors_agree_with_oathtool() -> None:
    """RFC 6238 appendix B (SHA-1; its 8-digit values, last six digits) and oathtool agree."""
    vectors = {59: "287082", 1111111109: "081804", 1234567890: "005924", 2000000000: "279037"}
    for unix, expected in vectors.items():
        at = datetime.fromtimestamp(unix, tz=UTC)
        assert primitive.code_at(RFC_SECRET, primitive.time_step(at)) == expected
        assert oathtool(RFC_SECRET, at) == expected


@pytest.mark.parametrize("minutes", [0, 1, 7, 60 * 24 * 365])
def test_fresh_secrets_give_the_same_codes_as_oathtool(minutes: int) -> None:
    secret = primitive.new_secret()
    at = NOON + timedelta(minutes=minutes)
    assert primitive.code_at(secret, primitive.time_step(at)) == oathtool(secret, at)


def test_secret_is_160_random_bits_in_base32() -> None:
    """NIST N25: the key has at least 112 bits (we use 160, RFC 4226's advice)."""
    secrets_made = {primitive.new_secret() for _ in range(50)}
    assert len(secrets_made) == 50
    for secret in secrets_made:
        assert len(secret) == 32
        assert len(base64.b32decode(secret)) * 8 == 160


def test_secret_is_shown_in_groups_of_four() -> None:
    assert primitive.grouped("ABCDEFGHIJKLMNOP") == "ABCD EFGH IJKL MNOP"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("123456", "123456"),
        (" 123 456 ", "123456"),
        ("123-456", "123456"),
        ("12345", None),
        ("1234567", None),
        ("abcdef", None),
        ("12345a", None),
        ("１２３４５６", None),  # fullwidth digits: isdigit() says yes, we say no
        ("", None),
        ("1" * 10_000, None),
    ],
)
def test_only_six_ascii_digits_make_a_code(text: str, expected: str | None) -> None:
    assert primitive.normalize_code(text) == expected


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_match_names_the_step_and_offset_within_the_window(offset: int) -> None:
    """NIST N28: one step either side; the caller learns which step (for replay protection)."""
    secret = primitive.new_secret()
    code = oathtool(secret, NOON + timedelta(seconds=30 * offset))
    match = primitive.match_step(secret=secret, code=code, now=NOON, window=1)
    assert match == primitive.StepMatch(step=primitive.time_step(NOON) + offset, offset=offset)


@pytest.mark.parametrize("offset", [-2, 2, 10])
def test_match_outside_the_window_is_none(offset: int) -> None:
    secret = primitive.new_secret()
    code = oathtool(secret, NOON + timedelta(seconds=30 * offset))
    assert primitive.match_step(secret=secret, code=code, now=NOON, window=1) is None
    wide = primitive.match_step(secret=secret, code=code, now=NOON, window=10)
    assert wide is not None and wide.offset == offset


def test_provisioning_uri_names_issuer_account_and_secret() -> None:
    uri = primitive.provisioning_uri(secret=RFC_SECRET, account_name="alice")
    assert uri == f"otpauth://totp/Relatch:alice?secret={RFC_SECRET}&issuer=Relatch"


def test_qr_is_an_svg_data_uri() -> None:
    data_uri = primitive.qr_data_uri("otpauth://totp/Relatch:alice?secret=AAAA&issuer=Relatch")
    prefix = "data:image/svg+xml;base64,"
    assert data_uri.startswith(prefix)
    assert base64.b64decode(data_uri.removeprefix(prefix)).startswith(b"<svg")


# --- sealing --------------------------------------------------------------------------------


def test_sealed_secret_opens_with_the_same_key_and_binding(settings) -> None:
    secret = primitive.new_secret()
    sealed = primitive.seal(secret, bound_to="user:1")
    assert secret not in sealed
    assert primitive.unseal(sealed, bound_to="user:1") == secret
    assert primitive.seal(secret, bound_to="user:1") != sealed  # a fresh nonce each time


def test_another_secret_key_cannot_open_it_and_says_so(settings) -> None:
    sealed = primitive.seal(primitive.new_secret(), bound_to="user:1")
    old_key = settings.SECRET_KEY
    settings.SECRET_KEY = "a-different-signing-key-" + "x" * 40
    with pytest.raises(primitive.SecretUnreadableError, match="another SECRET_KEY"):
        primitive.unseal(sealed, bound_to="user:1")
    settings.SECRET_KEY_FALLBACKS = [old_key]  # a rotated key still opens the old rows
    assert primitive.unseal(sealed, bound_to="user:1")


def test_a_secret_copied_to_another_account_does_not_open(settings) -> None:
    sealed = primitive.seal(primitive.new_secret(), bound_to="user:1")
    with pytest.raises(primitive.SecretUnreadableError):
        primitive.unseal(sealed, bound_to="user:2")


@pytest.mark.parametrize("sealed", ["", "plain", "v1:", "v1:!!!", "v1:AAAA"])
def test_garbage_is_refused_clearly(sealed: str, settings) -> None:
    with pytest.raises(primitive.SecretUnreadableError):
        primitive.unseal(sealed, bound_to="user:1")


def test_a_tampered_secret_is_refused(settings) -> None:
    sealed = primitive.seal(primitive.new_secret(), bound_to="user:1")
    blob = bytearray(base64.urlsafe_b64decode(sealed.removeprefix("v1:")))
    blob[-1] ^= 1
    forged = "v1:" + base64.urlsafe_b64encode(bytes(blob)).decode()
    with pytest.raises(primitive.SecretUnreadableError):
        primitive.unseal(forged, bound_to="user:1")
