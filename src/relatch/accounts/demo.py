"""Sample data for ``relatch demo``.

Each step takes the run, creates what is missing, skips what exists, and says which. The
steps are listed in ``DEMO_STEPS`` of the demo command: the people here, a project
(``relatch.index.demo``) and a recovery request (``relatch.recovery.demo``).
"""

from dataclasses import dataclass, field

from django.db import transaction

from relatch.accounts.models import Email, User
from relatch.accounts.provisioning import create_verified_user
from relatch.accounts.usernames import is_username_taken


@dataclass(frozen=True)
class DemoPerson:
    username: str
    name: str
    is_staff: bool = False

    @property
    def email(self) -> str:
        return f"{self.username}@example.org"


DEMO_PEOPLE = (
    DemoPerson("alice", "Alice Liddell"),
    DemoPerson("bob", "Bob Okafor"),
    DemoPerson("carol", "Carol Díaz"),
    DemoPerson("dana", "Dana Whitfield", is_staff=True),
)


def demo_account(username: str) -> User | None:
    """The demo's own account named ``username``, or None when there is none.

    A later step must never hand a real person's account a project or a recovery request: an
    account with the demo name is the demo's only if it holds the demo address, verified
    (example.org is reserved for examples, RFC 2606, so no real person receives mail there).
    """
    person = next((p for p in DEMO_PEOPLE if p.username == username), None)
    if person is None:
        return None
    return User.objects.filter(
        username__iexact=username, emails__address__iexact=person.email, emails__verified=True
    ).first()


@dataclass
class DemoRun:
    """One ``relatch demo`` run: the password for the accounts it creates, and what it did
    (``accounts``: the usernames it created; ``created``: everything it created)."""

    password: str
    accounts: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@transaction.atomic
def seed_people(run: DemoRun) -> None:
    """Maintainers with verified addresses, and one staff member."""
    for person in DEMO_PEOPLE:
        if is_username_taken(person.username):
            run.notes.append(f"Skipped {person.username}: the username exists.")
        elif Email.objects.filter(address__iexact=person.email, verified=True).exists():
            run.notes.append(f"Skipped {person.username}: {person.email} is taken.")
        else:
            create_verified_user(
                username=person.username,
                email=person.email,
                password=run.password,
                name=person.name,
                is_staff=person.is_staff,
            )
            role = "staff" if person.is_staff else "maintainer"
            run.accounts.append(person.username)
            run.created.append(person.username)
            run.notes.append(f"Created {role} {person.username} <{person.email}>.")
