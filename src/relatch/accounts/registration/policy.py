"""Who may create an account: RELATCH_SIGNUP (open, closed, domains) and RELATCH_SIGNUP_DOMAINS.

Read from settings on every request (never copied at import), so a test or a reload sees the
value in force.

- ``open``: anyone may register (the default with RELATCH_READ_ACCESS=public).
- ``closed``: nobody registers; operators make accounts with ``relatch createuser`` (the
  default with RELATCH_READ_ACCESS=authenticated: private reads mean nothing if anyone can
  sign up and read).
- ``domains``: only addresses at one of RELATCH_SIGNUP_DOMAINS, matched exactly (after IDNA
  and lower case) on the part after the address's last ``@``, so ``example.org.evil.com``,
  ``evil-example.org`` and ``"a@example.org"@evil.com`` are all refused. The rule is on the
  address that gets verified: registration refuses other domains, and so does replacing the
  unverified address (``relatch.accounts.emails.services.replace_unverified_email``), the only
  way an account changes its address before one is verified. Until then the account works
  nowhere (RequireVerifiedEmailMiddleware; reads need a verified address, see
  ``relatch.index.simple.access.session_reader``).

  Once an address at the domain is verified, the owner may add other addresses and remove the
  domain one, as anywhere else. The rule says who may join, proved once by the mailbox; it is
  not a membership test Relatch could keep true: a leaver's work address stays verified on the
  account after their mailbox is gone, so forbidding its removal would revoke nothing while
  blocking honest moves. Leavers are removed by operators.
"""

from django.conf import settings

OPEN = "open"
CLOSED = "closed"
DOMAINS = "domains"
CLOSED_MESSAGE = (
    "Accounts on this index are made by its operators. Ask them for one: they will send you a "
    "link to set your password."
)


class SignupRefusedError(Exception):
    """This sign-up is not allowed here; ``message`` says why, plainly. Nothing was made."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def mode() -> str:
    """The RELATCH_SIGNUP mode in force."""
    return str(settings.SIGNUP)


def signup_open() -> bool:
    """Whether strangers may see and use the registration form (open or domains)."""
    return mode() != CLOSED


def _ascii_domain(domain: str) -> str | None:
    """The domain as DNS compares it (IDNA, lower case, no trailing dot); None if it has no
    such form, which then matches nothing."""
    try:
        return domain.strip().rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None


def allowed_domains() -> frozenset[str]:
    """RELATCH_SIGNUP_DOMAINS in the form addresses are compared in."""
    return frozenset(d for d in map(_ascii_domain, settings.SIGNUP_DOMAINS) if d)


def domains_message() -> str:
    names = ", ".join(sorted(settings.SIGNUP_DOMAINS))
    return f"Accounts on this index are for addresses at {names} only. Use your address there."


def address_allowed(address: str) -> bool:
    """Whether an (already normalised) address may belong to a new account here."""
    if mode() == CLOSED:
        return False
    if mode() != DOMAINS:
        return True
    # The last "@": a quoted local part may hold another one ("a@example.org"@evil.com).
    domain = _ascii_domain(address.rpartition("@")[2])
    return domain is not None and domain in allowed_domains()


def refuse_signup(address: str) -> None:
    """SignupRefusedError unless a stranger may register with ``address`` now."""
    if mode() == CLOSED:
        raise SignupRefusedError(CLOSED_MESSAGE)
    if not address_allowed(address):
        raise SignupRefusedError(domains_message())


def refuse_first_address(address: str) -> None:
    """For an account with no verified address changing the one it registered with: in
    domains mode the new one must be at an allowed domain too, or a registrant would sign up
    as someone@example.org and then verify an address of their own elsewhere."""
    if mode() == DOMAINS and not address_allowed(address):
        raise SignupRefusedError(domains_message())
