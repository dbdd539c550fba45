"""Signing in and confirming it is you: the password step, the one second-factor step, the
new-device check, passkey sign-in and re-authentication. Built on ``relatch.accounts`` (users,
passwords, sessions) and ``relatch.mfa`` (factors); neither imports this package."""
