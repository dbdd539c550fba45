"""What each satisfied proof rests on, and which of them are independent (DESIGN §5).

The question for every proof is: who else could have satisfied it? A code mailed to an
address, a password set through a mailed reset link and a password changed in the last 30
days all rest on the same mailbox; an upload names a repository its uploader controls; one
person is one source, whatever they supplied. The policy (``relatch.recovery.policy``)
counts sources, never proof kinds: two proofs on one source are one.

Everything is judged now, from the rows as they are, not from what was true when the proof
was answered: a password reset by mail during the request stops counting as knowledge.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import models
from django.utils import timezone

from relatch.accounts.models import Email, User
from relatch.audit.models import EventKind, SecurityEvent
from relatch.index.models import APIToken, Project
from relatch.mfa.policy import has_second_factor
from relatch.recovery.models import ProofKind, RecoveryProof, RecoveryRequest, State
from relatch.recovery.proofs import repositories

# A password changed this close to the request (or during it) may be an intruder's.
PASSWORD_SETTLED = timedelta(days=30)
# A co-owner vouches only after holding the role this long before the request.
CO_OWNER_SINCE = timedelta(days=30)
PASSWORD_SET_KINDS = (EventKind.ACCOUNT_CREATED, EventKind.PASSWORD_CHANGED,
                      EventKind.PASSWORD_RESET, EventKind.RECOVERY_COMPLETED)
SET_THROUGH_MAIL = (EventKind.PASSWORD_RESET, EventKind.RECOVERY_COMPLETED)


class Source(models.TextChoices):
    MAILBOX = "mailbox", "the mailbox"
    KNOWLEDGE = "knowledge", "something only the owner knows"
    FACTOR = "factor", "a second factor of the account"
    REPOSITORY = "repository", "the project's repository"
    TOKEN = "token", "an API token of the account"
    PERSON = "person", "another person"


@dataclass(frozen=True)
class Basis:
    """What one proof rests on: its source (None: it rests on nothing that counts), the key
    that makes two proofs one source, and why, in words for staff."""

    source: Source | None
    key: str
    why: str


@dataclass(frozen=True)
class Judged:
    """A satisfied proof as the policy sees it."""

    proof: RecoveryProof
    source: Source | None
    counts: bool
    why: str

    @property
    def source_label(self) -> str:
        return str(self.source.label) if self.source else "nothing that counts"


def judge(recovery: RecoveryRequest, *, now: datetime | None = None) -> list[Judged]:
    """Every satisfied proof of ``recovery``, each with its source; a proof whose source an
    earlier proof already gave does not count again. A completed request is read as it was
    judged when it completed (``record_judgement``): completion itself unverifies addresses
    and disables the password, which would make its own proofs look as if they never
    counted."""
    now = now or timezone.now()
    satisfied = list(recovery.proofs.filter(status=RecoveryProof.Status.SATISFIED).order_by(
        "checked_at", "pk"))
    if recovery.state == State.COMPLETED and all("judged" in p.evidence for p in satisfied):
        return [_as_recorded(proof) for proof in satisfied]
    seen: dict[str, Judged] = {}
    judged = []
    for proof in satisfied:
        basis = basis_of(proof, recovery, now)
        first = seen.get(basis.key) if basis.source else None
        if first is not None:
            why = f"{basis.why} Same source as the earlier {first.proof.get_kind_display()} proof."
            judged.append(Judged(proof, basis.source, False, why))
            continue
        item = Judged(proof, basis.source, basis.source is not None, basis.why)
        if basis.source:
            seen[basis.key] = item
        judged.append(item)
    return judged


def record_judgement(recovery: RecoveryRequest) -> list[Judged]:
    """Keep, in each satisfied proof's evidence, how it was counted now (at completion)."""
    judged = judge(recovery)
    for item in judged:
        item.proof.evidence = {**item.proof.evidence, "judged": {
            "source": str(item.source or ""), "counts": item.counts, "why": item.why}}
        item.proof.save(update_fields=["evidence"])
    return judged


def _as_recorded(proof: RecoveryProof) -> Judged:
    kept = proof.evidence["judged"]
    source = Source(kept["source"]) if kept.get("source") else None
    return Judged(proof, source, bool(kept.get("counts")), str(kept.get("why", "")))


def independent_sources(recovery: RecoveryRequest, *, now: datetime | None = None) -> list[Judged]:
    """The satisfied proofs that count, one per independent source."""
    return [item for item in judge(recovery, now=now) if item.counts]


def basis_of(proof: RecoveryProof, recovery: RecoveryRequest, now: datetime) -> Basis:
    account = recovery.user
    if account is None:
        return Basis(None, "", "No account has the username this request names.")
    judge_kind = _JUDGES.get(ProofKind(proof.kind))
    if judge_kind is None:
        return Basis(None, "", "This kind of proof is not counted.")
    return judge_kind(proof, recovery, account, now)


def _day(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d}"


# -- the mailbox and the password ------------------------------------------------------------


def _address(proof: RecoveryProof, recovery: RecoveryRequest, account: User,
             now: datetime) -> Basis:
    email = Email.objects.filter(pk=proof.evidence.get("address_id") or 0, user=account).first()
    if email is None or not email.verified or email.verified_at is None:
        return Basis(None, "", "The address the code went to is no longer a verified address "
                               "of the account.")
    if email.not_receiving_since is not None:
        return Basis(None, "", "Mail to the address the code went to bounced on "
                               f"{_day(email.not_receiving_since)}: it does not count as the "
                               "account's mailbox until it is verified again.")
    if email.verified_at >= recovery.created_at:
        return Basis(None, "", f"The address the code went to was verified on "
                               f"{_day(email.verified_at)}, after the request was filed.")
    return Basis(Source.MAILBOX, "mailbox", f"A code reached an address verified on the "
                                            f"account since {_day(email.verified_at)}.")


def last_password_set(account: User) -> tuple[datetime, str]:
    """When the password was last set, and by which event kind (registration when no event
    says otherwise)."""
    event = (SecurityEvent.objects.filter(user=account, kind__in=PASSWORD_SET_KINDS)
             .order_by("-created_at", "-id").first())
    if event is None:
        return account.date_joined, EventKind.ACCOUNT_CREATED
    return event.created_at, event.kind


def _password(proof: RecoveryProof, recovery: RecoveryRequest, account: User,
              now: datetime) -> Basis:
    set_at, kind = last_password_set(account)
    if kind in SET_THROUGH_MAIL:
        return Basis(Source.MAILBOX, "mailbox", f"The password was last set through a mailed "
                                                f"reset link on {_day(set_at)}: whoever holds the "
                                                "mailbox could know it.")
    if set_at > recovery.created_at - PASSWORD_SETTLED:
        return Basis(Source.MAILBOX, "mailbox", f"The password changed on {_day(set_at)}, within "
                                                f"{PASSWORD_SETTLED.days} days before the request "
                                                "or during it: it shows no more than the mailbox.")
    return Basis(Source.KNOWLEDGE, "knowledge", f"The password was set by the signed-in owner on "
                                                f"{_day(set_at)} and not reset by mail since.")


# -- factors and tokens ---------------------------------------------------------------------


def _factor(proof: RecoveryProof, recovery: RecoveryRequest, account: User,
            now: datetime) -> Basis:
    enrolled = proof.evidence.get("enrolled_at")
    if not isinstance(enrolled, str) or not enrolled:
        return Basis(None, "", "The proof does not say when the factor was enrolled.")
    when = datetime.fromisoformat(enrolled)
    if when >= recovery.created_at:
        return Basis(None, "", f"The factor was enrolled on {_day(when)}, after the request "
                               "was filed.")
    return Basis(Source.FACTOR, "factor", f"A factor enrolled on {_day(when)}, before the "
                                          "request: the strongest evidence there is.")


def _token(proof: RecoveryProof, recovery: RecoveryRequest, account: User,
           now: datetime) -> Basis:
    token = APIToken.objects.filter(pk=proof.evidence.get("token_id") or 0, user=account).first()
    if token is None:
        return Basis(None, "", "The token is no longer one of the account's.")
    if token.created_at >= recovery.created_at:
        return Basis(None, "", f"The token was created on {_day(token.created_at)}, after the "
                               "request was filed.")
    return Basis(Source.TOKEN, "token", f"An API token of the account, created on "
                                        f"{_day(token.created_at)}.")


# -- the repository and people ------------------------------------------------------------


def _repository(proof: RecoveryProof, recovery: RecoveryRequest, account: User,
                now: datetime) -> Basis:
    project = Project.objects.filter(name=proof.evidence.get("project", "")).first()
    url = str(proof.evidence.get("repository", ""))
    if project is None:
        return Basis(None, "", "The project of this proof no longer exists.")
    counts, why = repositories.judge(account=account, project=project, url=url,
                                     filed_at=recovery.created_at)
    return Basis(Source.REPOSITORY if counts else None, "repository" if counts else "", why)


def _co_owner(proof: RecoveryProof, recovery: RecoveryRequest, account: User,
              now: datetime) -> Basis:
    person = User.objects.filter(pk=proof.evidence.get("vouched_by_id") or 0).first()
    if person is None:
        return Basis(None, "", "The account that vouched no longer exists.")
    refusal = vouch_refusal(recovery=recovery, co_owner=person)
    if refusal:
        return Basis(None, "", refusal)
    return Basis(Source.PERSON, f"person:{person.pk}", f"{person.username}, a co-owner with "
                                                        "two-step sign-in, vouched after seeing "
                                                        "who asks.")


def vouch_refusal(*, recovery: RecoveryRequest, co_owner: User) -> str:
    """Why ``co_owner``'s word does not count for ``recovery`` ("" when it does)."""
    account = recovery.user
    if account is None or co_owner.pk == account.pk:
        return "The account cannot vouch for itself."
    if not has_second_factor(co_owner):
        return f"{co_owner.username} has no two-step sign-in."
    if not _long_co_owner(account, co_owner, recovery.created_at - CO_OWNER_SINCE):
        return (f"{co_owner.username} has not owned a project together with this account for "
                f"{CO_OWNER_SINCE.days} days before the request.")
    if co_owner.emails.filter(verified=True, address__iexact=recovery.contact_email).exists():
        return (f"The request's contact address is {co_owner.username}'s own: a person cannot "
                "vouch for their own request.")
    return ""


def _long_co_owner(account: User, co_owner: User, since: datetime) -> bool:
    from relatch.index.models import Role

    owned = Role.objects.filter(user=account, kind=Role.Kind.OWNER).values("project")
    return Role.objects.filter(user=co_owner, kind=Role.Kind.OWNER, project__in=owned,
                               created_at__lte=since).exists()


_JUDGES = {
    ProofKind.ACCOUNT_EMAIL: _address,
    ProofKind.PASSWORD: _password,
    ProofKind.TOTP: _factor,
    ProofKind.RECOVERY_CODE: _factor,
    ProofKind.SECURITY_KEY: _factor,
    ProofKind.API_TOKEN: _token,
    ProofKind.REPO_BRANCH: _repository,
    ProofKind.CO_OWNER: _co_owner,
}
