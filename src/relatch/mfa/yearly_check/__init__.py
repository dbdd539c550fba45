"""The yearly confirmation of recovery information (issue 17, prevention).

Every 12 months an account with a second factor is asked, by mail, to look at its ways back
in and confirm them in one click: its verified addresses (do they still reach it?), its
recovery codes (are they still stored? the count is shown), its factors (app, keys by label).
The page (``views``) lists them with links to fix what is wrong, and one button, "This is all
still right" (``services.confirm_recovery_info``), recorded in the security history.

The ask is sent by a daily pass (``services.ask_due_accounts``, queued by the recovery tick
through ``tasks.ensure_recovery_info_checks_scheduled``), 12 months after the account's
oldest second factor was added and then 12 months after its last ask or confirmation,
whichever is later. It lives in mfa, not accounts: whether an account has a second factor is
mfa's to say (``relatch.mfa.policy``), and accounts imports no mfa.
"""
