"""Sample data for ``relatch demo``.

Each step takes the run, creates what is missing, skips what exists, and says which. Later
issues add steps (projects, recovery requests) to ``DEMO_STEPS`` in the demo command.
"""

from dataclasses import dataclass, field

from django.db import transaction

from relatch.accounts.models import Email
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


@dataclass
class DemoRun:
    """One ``relatch demo`` run: the password for what it creates, and what it did."""

    password: str
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
            run.created.append(person.username)
            run.notes.append(f"Created {role} {person.username} <{person.email}>.")
