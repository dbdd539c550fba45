"""Tokens nobody uses are disabled (issue 21): once a day, a live token the account made whose
last use (or creation, if never used) is older than TOKEN_UNUSED_DAYS is revoked, recorded and
mailed about. Batched, idempotent, and a token used meanwhile is left working."""

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client, TestCase
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from relatch.accounts.daily import DAILY
from relatch.accounts.models import Email, User
from relatch.audit.models import EventKind, SecurityEvent
from relatch.index.models import APIToken
from relatch.index.tokens import services
from relatch.index.tokens.tasks import unused_token_pass
from relatch.index.tokens.unused import _disable_batch, disable_unused_tokens, unused_tokens
from relatch.recovery.tasks import recovery_tick
from tests.conftest import run_pending_tasks
from tests.index.read_tokens import make_token
from tests.index.test_tokens import LIST
from tests.index.test_tokens_hygiene import minted_token
from tests.mfa.factor_rows import add_app

DISABLED = EventKind.API_TOKEN_DISABLED_UNUSED


@pytest.fixture
def alice(user: User) -> User:
    add_app(user)
    Email.objects.create(user=user, address="alice@work.example", verified=True,
                         verified_at=timezone.now())
    Email.objects.create(user=user, address="maybe@example.net", verified=False)
    return user


def ago(days: int) -> Any:
    return timezone.now() - timedelta(days=days)


def token_and_text(user: User, name: str, *, made: int, used: int | None = None,
                   **fields: Any) -> tuple[APIToken, str]:
    """A token of ``user`` made ``made`` days ago and last used ``used`` days ago."""
    text = make_token(user, purpose=APIToken.Purpose.UPLOAD)
    row = APIToken.objects.get(identifier=text.removeprefix("relatch-").split(".")[0])
    APIToken.objects.filter(pk=row.pk).update(
        name=name, created_at=ago(made), last_used_at=ago(used) if used is not None else None,
        **fields)
    row.refresh_from_db()
    return row, text


def token(user: User, name: str, **kwargs: Any) -> APIToken:
    return token_and_text(user, name, **kwargs)[0]


def run_pass(**kwargs: Any) -> Any:
    with TestCase.captureOnCommitCallbacks(execute=True):
        result = disable_unused_tokens(**kwargs)
    run_pending_tasks()  # deliver the mail
    return result


def state(row: APIToken) -> tuple[bool, str]:
    row.refresh_from_db()
    return row.revoked_at is not None, row.revoked_because


def test_tokens_unused_for_too_long_are_disabled_with_an_event_and_a_mail(
    alice: User, mail: Any, signed_in: Client
) -> None:
    never_used, text = token_and_text(alice, "old laptop", made=200)
    idle = token(alice, "old ci", made=400, used=181, expires_at=ago(-30))
    recent = token(alice, "busy ci", made=400, used=10)
    young = token(alice, "new laptop", made=5)
    expired = token(alice, "expired", made=400, expires_at=ago(1))
    revoked = token(alice, "revoked", made=400, revoked_at=ago(300))
    minted = minted_token(alice)
    APIToken.objects.filter(pk=minted.pk).update(created_at=ago(300))

    result = run_pass()

    assert (result.enabled, result.checked, result.disabled) == (True, 2, 2)
    assert state(never_used) == (True, "unused")
    assert state(idle) == (True, "unused")
    for kept in (recent, young, expired, minted):
        assert state(kept) == (False, "")
    assert state(revoked) == (True, "")
    events = SecurityEvent.objects.filter(kind=DISABLED, user=alice).order_by("id")
    assert [e.details["name"] for e in events] == ["old laptop", "old ci"]
    assert events[0].details["never_used"] is True
    assert events[1].details["unused_since"] == idle.last_used_at.isoformat()
    # Every verified address, for each token; not the unverified one.
    assert sorted(str(m["To"]) for m in mail.messages) == [
        "alice@example.org", "alice@example.org", "alice@work.example", "alice@work.example"]
    subjects = {str(m["Subject"]) for m in mail.messages}
    assert subjects == {"An unused API token of your Relatch account was disabled"}
    bodies = [mail.text(m) for m in mail.to("alice@work.example")]
    assert any('The API token "old laptop"' in b and "never used since it was made on" in b
               for b in bodies)
    old_ci = next(b for b in bodies if '"old ci"' in b)
    assert f"unused since {idle.last_used_at:%Y-%m-%d %H:%M} UTC" in old_ci
    assert "tokens unused for 180 days stop working" in old_ci
    assert "make a new one on your API tokens page" in old_ci
    assert "someone may have your password" not in old_ci  # nobody did anything
    # The page says why; the token is refused as revoked.
    assert "Disabled: unused for too long" in signed_in.get(LIST).text
    with pytest.raises(services.TokenRefusedError, match="revoked"):
        services.authenticate_token(raw=text)


def test_a_second_pass_changes_nothing(alice: User, mail: Any) -> None:
    row = token(alice, "old", made=200)
    assert run_pass().disabled == 1
    mail.clear()
    again = run_pass()
    assert (again.checked, again.disabled) == (0, 0)
    assert SecurityEvent.objects.filter(kind=DISABLED).count() == 1
    assert mail.messages == []
    assert state(row) == (True, "unused")


def test_a_token_used_meanwhile_is_not_disabled(alice: User, mail: Any, rf: Any) -> None:
    """The conditional UPDATE repeats the rule: a use recorded after the pass read its batch
    (an upload in flight) keeps the token working."""
    used, idle = token(alice, "in use", made=200), token(alice, "idle", made=200)
    now = timezone.now()
    cutoff = now - timedelta(days=180)
    ids = list(unused_tokens(cutoff=cutoff, now=now).values_list("pk", flat=True))
    assert sorted(ids) == sorted([used.pk, idle.pk])
    services.note_token_use(request=rf.get("/legacy/"), token=used)  # between read and update
    assert _disable_batch(ids, cutoff=cutoff, now=now) == 1
    assert state(used) == (False, "")
    assert state(idle) == (True, "unused")
    assert [e.details["name"] for e in SecurityEvent.objects.filter(kind=DISABLED)] == ["idle"]


def test_the_pass_walks_in_batches(alice: User, mail: Any) -> None:
    rows = [token(alice, f"t{i}", made=200 + i) for i in range(5)]
    result = run_pass(batch_size=2)
    assert (result.checked, result.disabled) == (5, 5)
    assert all(state(row) == (True, "unused") for row in rows)


@pytest.mark.parametrize(("days", "disabled"), [(0, False), (30, True), (365, False)])
def test_the_period_is_configurable_and_0_turns_it_off(
    alice: User, settings: Any, days: int, disabled: bool
) -> None:
    row = token(alice, "old", made=100)
    settings.TOKEN_UNUSED_DAYS = days
    result = run_pass()
    assert result.enabled is (days > 0)
    assert state(row) == ((True, "unused") if disabled else (False, ""))


def test_the_recovery_tick_queues_one_pass_a_day_which_the_worker_runs(
    alice: User, mail: Any
) -> None:
    row = token(alice, "old", made=200)
    first, second = recovery_tick.call(), recovery_tick.call()
    assert (first["unused_token_pass_queued"], second["unused_token_pass_queued"]) == (True, False)
    [waiting] = DBTaskResult.objects.filter(task_path=unused_token_pass.module_path,
                                            status="READY")
    assert abs(waiting.run_after - waiting.enqueued_at - DAILY) < timedelta(minutes=1)
    run_pending_tasks()
    assert state(row) == (False, "")  # not before tomorrow
    DBTaskResult.objects.filter(pk=waiting.pk).update(run_after=timezone.now())
    run_pending_tasks()
    waiting.refresh_from_db()
    assert waiting.status == "SUCCESSFUL"
    assert waiting.return_value == {"enabled": True, "checked": 1, "disabled": 1}
    assert state(row) == (True, "unused")
    assert len(mail.to("alice@work.example")) == 1


@pytest.mark.parametrize("days", [180, 0])
def test_the_command_runs_a_pass_now(alice: User, settings: Any, days: int) -> None:
    settings.TOKEN_UNUSED_DAYS = days
    row = token(alice, "old", made=200)
    out = StringIO()
    call_command("disable_unused_tokens", stdout=out)
    if days:
        assert out.getvalue().strip() == "Disabled 1 of 1 tokens unused for 180 days."
        assert state(row) == (True, "unused")
    else:
        assert "The rule is off" in out.getvalue()
        assert state(row) == (False, "")
