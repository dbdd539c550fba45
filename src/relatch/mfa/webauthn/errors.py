"""The one error of the security-key services."""


class WebAuthnError(Exception):
    """A security-key ceremony or change that is refused; nothing was changed.

    ``message`` is for the user; ``reason`` is a short code for the caller (its events, tests):
    "no_challenge", "expired", "malformed", "unknown_credential", "invalid", "cloned",
    "label", "duplicate", "too_many", "not_found", "refused", "frozen" (the account is frozen:
    relatch.accounts.freeze).
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
