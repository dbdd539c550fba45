"""What the requester reads about proofs: the words the proof and status pages and the JSON
API share, written once (issue 16). Plain text, no HTML; nothing here decides anything."""

from relatch.recovery.models import ProofKind

# What each kind of proof asks, as the status page and the API list it.
PROOF_INSTRUCTIONS = {
    "repo_branch": "Push a branch with the name shown here to the project's repository. "
                   "We check for it by ourselves; you need not tell us.",
    "api_token": "Enter an API token of the account. We check it and forget it.",
    "account_email": "We send a code to an address of the account; enter it here.",
    "password": "Enter the account's current password.",
    "recovery_code": "Enter one of the account's unused recovery codes.",
    "totp": "Enter the 6-digit code your authenticator app shows for this account.",
    "security_key": "Use one of the account's security keys on the proof page.",
    "co_owner": "Ask a co-owner of one of your projects to sign in and vouch for you.",
}

ACCEPTED = "Proof accepted. Thank you."
CODE_SENT = "A code is on its way. It works for 10 minutes."
CHOOSE_ADDRESS = "Choose one of the addresses."
OTHER_KIND = "This proof asks for something else."
CO_OWNER_ANSWERS = "A co-owner answers this proof on their own page."
# An answer the form cannot even read, by kind (the factor kinds use their form's words).
UNREADABLE = {
    ProofKind.API_TOKEN: "Paste the whole token.",
    ProofKind.PASSWORD: "Enter the password.",
    ProofKind.ACCOUNT_EMAIL: "Enter the 6 digits of the code.",
}
