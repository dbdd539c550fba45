"""The factor items of the account's security check-up: two-step sign-in, recovery codes and
phishing resistance. Added to the check-up's list when the app starts (``apps.MfaConfig``).

The phishing check, for an account with no second factor, says nothing: the two-step item
says it all.
"""

from relatch.accounts.models import User
from relatch.accounts.overview.checkup import Check, CheckupItem, plural
from relatch.mfa.policy import has_second_factor
from relatch.mfa.queries import FactorSummary, factor_summary


def _factor_names(factors: FactorSummary) -> str:
    names = ["your authenticator app"] if factors.app else []
    if len(factors.keys) == 1:
        names.append("your security key")
    elif factors.keys:
        names.append(f"one of your {len(factors.keys)} security keys")
    return " or ".join(names)


def two_step_check(user: User) -> CheckupItem:
    """A password leaks through reuse, phishing and guessing; a second factor means a leaked
    password alone no longer signs anyone in."""
    if has_second_factor(user):
        named = _factor_names(factor_summary(user=user))
        return CheckupItem(
            ok=True,
            title="Two-step sign-in is on",
            advice=f"Signing in needs your password and {named}, so a stolen password alone "
            "is not enough.",
            link_name="mfa:overview",
            link_label="Two-step sign-in",
        )
    return CheckupItem(
        ok=False,
        title="Turn on two-step sign-in",
        advice="Right now anyone who learns your password can sign in as you. Add an "
        "authenticator app or a security key, so a password alone is not enough.",
        link_name="mfa:overview",
        link_label="Set up two-step sign-in",
    )


def _codes_to_do(factors: FactorSummary) -> CheckupItem | None:
    """The to-do item when the recovery codes need action, else None."""
    codes = factors.codes
    if codes is None:
        return _codes_item(
            "Make recovery codes",
            "If you lose your phone or security key, a recovery code gets you back in without "
            "waiting for anyone. You need a saved set before you add a second factor.",
            label="Make recovery codes",
        )
    if codes.running_low:
        title = f"Only {plural(codes.unused, 'recovery code')} left"
        if codes.unused == 0:
            title = "All your recovery codes are used"
        return _codes_item(
            title,
            "Make a new set and keep it somewhere safe: it replaces the old one.",
            label="Make a new set",
        )
    if not codes.confirmed:
        return _codes_item(
            "Confirm you saved your recovery codes",
            "Enter one of them back to show they are kept somewhere safe; it is not spent.",
            label="Confirm your codes",
            link_name="recovery_codes:confirm",
        )
    return None


def _codes_item(
    title: str, advice: str, *, label: str, link_name: str = "recovery_codes:manage"
) -> CheckupItem:
    return CheckupItem(ok=False, title=title, advice=advice, link_name=link_name, link_label=label)


def recovery_codes_check(user: User) -> CheckupItem:
    """NIST N2: a saved code is the way back in; a used one is replaced with a new set.

    A to-do when there is no set, when two or fewer codes are left (that comes first: the new
    set is what is needed), or when the set was never confirmed as saved.
    """
    factors = factor_summary(user=user)
    if (to_do := _codes_to_do(factors)) is not None:
        return to_do
    assert factors.codes is not None  # _codes_to_do returns a to-do when there is no set
    return CheckupItem(
        ok=True,
        title=f"{factors.codes.unused} of {factors.codes.total} recovery codes unused",
        advice="Kept somewhere safe, they get you back in if you lose your other factors.",
        link_name="recovery_codes:manage",
        link_label="Recovery codes",
    )


def phishing_resistant_check(user: User) -> CheckupItem | None:
    """NIST N32: Relatch must offer a phishing-resistant factor; the user need not own one.

    Never a to-do: many people have no security key, and an item that stays open until they buy
    one teaches them to ignore the check-up. With only an app it is listed among the
    protections with a gentle suggestion; with no second factor the two-step item says it all.
    """
    factors = factor_summary(user=user)
    if factors.phishing_resistant:
        return CheckupItem(
            ok=True,
            title="A security key guards your sign-in against phishing",
            advice="A key answers only the real Relatch site, so a look-alike page cannot "
            "capture a sign-in with it.",
            link_name="webauthn:list",
            link_label="Security keys",
        )
    if not factors.has_second_factor:
        return None
    return CheckupItem(
        ok=True,
        title="Your authenticator app guards your sign-in; a security key would also stop phishing",
        advice="A fake site can trick anyone into typing an app code, but not into using a "
        "security key. If you have one, or a phone or computer that can keep a passkey, "
        "consider adding it too. This is optional.",
        link_name="webauthn:add",
        link_label="Add a security key",
    )


CHECKS: tuple[Check, ...] = (two_step_check, recovery_codes_check, phishing_resistant_check)
