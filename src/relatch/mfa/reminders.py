"""A reminder, some days after a second factor is enrolled, to check it still works.

People lose phones and misplace codes long before they need them; a nudge while they can
still sign in turns a future recovery request into a two-minute check.
"""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.tasks import task
from django.utils import timezone

from relatch.accounts.models import User
from relatch.accounts.notices import announce_to_account
from relatch.audit.models import EventKind
from relatch.audit.services import record_event


def schedule_factor_reminder(*, user: User) -> None:
    """Queue the reminder for FACTOR_REMINDER_DAYS from now (after the current commit)."""
    run_after = timezone.now() + timedelta(days=settings.FACTOR_REMINDER_DAYS)
    user_id = user.pk
    transaction.on_commit(
        lambda: send_factor_reminder.using(run_after=run_after).enqueue(user_id)
    )


@task()
def send_factor_reminder(user_id: int) -> str:
    """Mail the reminder if the account still has what it enrolled."""
    return remind_about_factors(user_id=user_id)


@transaction.atomic
def remind_about_factors(*, user_id: int) -> str:
    # Imported here: the factor packages import this module to schedule reminders.
    from relatch.mfa.models import RecoveryCode
    from relatch.mfa.policy import has_totp, has_webauthn

    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None or not (has_totp(user) or has_webauthn(user)):
        return "skipped"
    codes_left = RecoveryCode.objects.filter(code_set__user=user, used_at__isnull=True).count()
    announce_to_account(
        user=user,
        template="factor_reminder",
        context={
            "has_totp": has_totp(user),
            "key_count": user.webauthn_credentials.count(),
            "codes_left": codes_left,
            "security_notice": False,
        },
    )
    record_event(user=user, kind=EventKind.FACTOR_REMINDER_SENT, details={"codes_left": codes_left})
    return "sent"
