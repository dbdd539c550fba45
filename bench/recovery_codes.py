"""What a wrong recovery code costs: one Argon2 verification, against PyPI's eight.

Run by hand from the repository root:

    .venv/bin/python bench/recovery_codes.py [--rounds N]

It sets Django up by itself (a throw-away data directory and SQLite database, migrated), makes
one account with a set of 8 codes under the PRODUCTION password hasher (Django's
Argon2PasswordHasher defaults, not the tests' cheap one), then times, in the same run and
interleaved round by round:

- ``find_unused_code`` with a wrong code whose identifier exists in the set;
- ``find_unused_code`` with a wrong code whose identifier does not exist;
- the baseline: the same wrong code checked against every stored hash in turn, as PyPI does.

It prints the median of each, the number of Argon2 verifications each made, and the ratio.
The exit status is 1 if the counts are not 1, 1 and 8 (the claim this benchmark backs).
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def say(line: str = "") -> None:
    sys.stdout.write(line + "\n")


def set_up_django(data_dir: Path) -> None:
    """Production settings on a private data directory and database, migrated."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "relatch.settings"
    os.environ["RELATCH_DATA_DIR"] = str(data_dir)
    os.environ["RELATCH_DATABASE_URL"] = f"sqlite:///{data_dir / 'bench.sqlite3'}"
    for name in ("RELATCH_EMAIL_URL", "RELATCH_REDIS_URL", "RELATCH_TESTING"):
        os.environ.pop(name, None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


class VerificationCounter:
    """Counts calls to the Argon2 hasher's verify (each one is a full Argon2 computation)."""

    def __init__(self) -> None:
        from django.contrib.auth.hashers import Argon2PasswordHasher

        self.calls = 0
        real = Argon2PasswordHasher.verify

        def counting(hasher: Any, password: str, encoded: str) -> bool:
            self.calls += 1
            return bool(real(hasher, password, encoded))

        Argon2PasswordHasher.verify = counting  # type: ignore[method-assign]

    def count(self, check: Callable[[], object]) -> int:
        before = self.calls
        check()
        return self.calls - before


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="timed checks of each kind")
    rounds = parser.parse_args().rounds
    data_dir = Path(tempfile.mkdtemp(prefix="relatch-bench-"))
    try:
        set_up_django(data_dir)
        return run(rounds)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def run(rounds: int) -> int:
    from django.conf import settings
    from django.contrib.auth.hashers import check_password, get_hasher

    from relatch.accounts.models import User
    from relatch.mfa.models import RecoveryCode
    from relatch.mfa.recovery_codes.primitive import ALPHABET, parse_code
    from relatch.mfa.recovery_codes.services import find_unused_code, generate_recovery_codes

    assert settings.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"
    hasher = get_hasher("default")
    user = User.objects.create(username="bench")
    codes = generate_recovery_codes(request=None, user=user)
    identifiers = {code[:4] for code in codes}
    unknown_identifier = next(c * 4 for c in ALPHABET if c * 4 not in identifiers)
    wrong_secret = "-".join(["ZZZZ"] * 4)
    wrong_existing = f"{codes[0][:4]}-{wrong_secret}"
    wrong_unknown = f"{unknown_identifier}-{wrong_secret}"

    def try_every_hash() -> None:
        # PyPI: every unused code's hash is verified in turn until one matches.
        secret = parse_code(wrong_existing).secret
        for stored in RecoveryCode.objects.filter(code_set__user=user, used_at__isnull=True):
            if check_password(secret, stored.code_hash):
                return

    checks: dict[str, Callable[[], object]] = {
        "one-hash check, wrong code, identifier exists": lambda: find_unused_code(
            user=user, code=wrong_existing
        ),
        "one-hash check, wrong code, unknown identifier": lambda: find_unused_code(
            user=user, code=wrong_unknown
        ),
        "baseline, every stored hash in turn (PyPI)": try_every_hash,
    }
    counter = VerificationCounter()
    verifications = {name: counter.count(check) for name, check in checks.items()}  # warm-up
    timings = time_interleaved(checks, rounds)
    report(hasher, len(codes), rounds, timings, verifications)
    expected = [1, 1, len(codes)]
    return 0 if list(verifications.values()) == expected else 1


def time_interleaved(checks: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median seconds per check; kinds alternate each round so drift hits them all alike."""
    samples: dict[str, list[float]] = {name: [] for name in checks}
    for _ in range(rounds):
        for name, check in checks.items():
            start = time.perf_counter()
            check()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in samples.items()}


def report(
    hasher: Any, code_count: int, rounds: int, timings: dict[str, float], counts: dict[str, int]
) -> None:
    say(
        f"Wrong recovery code, {code_count} codes on the account, median of {rounds} rounds; "
        f"Argon2id time_cost={hasher.time_cost} memory_cost={hasher.memory_cost} KiB "
        f"parallelism={hasher.parallelism}"
    )
    for name, seconds in timings.items():
        plural = "" if counts[name] == 1 else "s"
        say(f"  {name:<48} {seconds * 1000:8.1f} ms  ({counts[name]} Argon2 verification{plural})")
    baseline = list(timings.values())[-1]
    for name, seconds in list(timings.items())[:-1]:
        say(f"  ratio baseline / {name}: {baseline / seconds:.1f}x")


if __name__ == "__main__":
    sys.exit(main())
