"""Naming a browser and its system from a user-agent string, for people to recognise."""

from dataclasses import dataclass

from ua_parser import parse_os, parse_user_agent

UNKNOWN_BROWSER = "Unknown browser"
UNKNOWN_SYSTEM = "Unknown system"


@dataclass(frozen=True)
class ClientDescription:
    browser: str
    system: str


def _named(family: str | None, major: str | None, unknown: str) -> str:
    if not family or family == "Other":
        return unknown
    return f"{family} {major}" if major else family


def describe_user_agent(user_agent: str) -> ClientDescription:
    """Browser and system names, e.g. Firefox 140 on Linux; "Unknown ..." when unparsable.

    The string is whatever the client sent: shown only as these parsed names, never raw in a
    heading, so a crafted agent cannot pose as a message from Relatch.
    """
    agent = parse_user_agent(user_agent) if user_agent else None
    system = parse_os(user_agent) if user_agent else None
    return ClientDescription(
        browser=_named(agent.family, agent.major, UNKNOWN_BROWSER) if agent else UNKNOWN_BROWSER,
        system=_named(system.family, system.major, UNKNOWN_SYSTEM) if system else UNKNOWN_SYSTEM,
    )
