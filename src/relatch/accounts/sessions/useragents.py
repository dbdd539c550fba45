"""Naming a browser and its system from a user-agent string, for people to recognise."""

from dataclasses import dataclass

from ua_parser import parse_os, parse_user_agent

UNKNOWN_BROWSER = "Unknown browser"
UNKNOWN_SYSTEM = "Unknown system"


@dataclass(frozen=True)
class ClientDescription:
    browser: str  # with its major version: "Firefox 140"
    system: str  # "Windows 10"
    # Without versions, which change under a device with every update: "Firefox on Windows".
    name: str = UNKNOWN_BROWSER

    def __str__(self) -> str:
        """ "Firefox 140 on Linux", for lines that name a client in passing (the desk's)."""
        if self.system == UNKNOWN_SYSTEM:
            return self.browser
        return f"{self.browser} on {self.system}"


def _known(family: str | None) -> str | None:
    return family if family and family != "Other" else None


def _named(family: str | None, major: str | None, unknown: str) -> str:
    if not _known(family):
        return unknown
    return f"{family} {major}" if major else str(family)


def _short_name(browser: str | None, system: str | None) -> str:
    if browser and system:
        return f"{browser} on {system}"
    if system:
        return f"A browser on {system}"
    return browser or UNKNOWN_BROWSER


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
        name=_short_name(
            _known(agent.family) if agent else None, _known(system.family) if system else None
        ),
    )
