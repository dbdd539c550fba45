"""The devices page's one list: each browser of the account once, with its sessions.

A trusted device (KnownDevice) and the sessions signed in from that browser (UserSession rows
with its device digest) are one entry: that is what a person recognises, "my laptop", not a
session id and a cookie digest. A session from a browser that is not trusted (its device was
forgotten, or it keeps no cookies) is an entry of its own.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from relatch.accounts.models import KnownDevice, User, UserSession
from relatch.accounts.sessions.methods import NOT_RECORDED
from relatch.accounts.sessions.places import Place, place_of
from relatch.accounts.sessions.queries import live_sessions
from relatch.accounts.sessions.useragents import describe_user_agent


@dataclass(frozen=True)
class DeviceEntry:
    """One browser as the devices page shows it."""

    key: str  # unique in the page, for element ids: "device-3", "session-8"
    device_id: int | None  # None: a session from a browser that is not trusted
    session_id: int | None  # that session (only when device_id is None)
    name: str  # the owner's name for it, or ``default_name``
    custom_name: str
    default_name: str  # "Firefox on Windows"
    browser: str  # "Firefox 140"
    system: str  # "Windows 10"
    method: str  # how it last signed in: "Password and app code"
    place: Place
    first_seen: datetime
    last_seen: datetime
    sessions: int  # how many of its sessions are signed in
    confirmed: bool
    is_current: bool

    @property
    def trusted(self) -> bool:
        return self.device_id is not None


@dataclass(frozen=True)
class _Seen:
    """A record of an entry (its device or a session): the latest says what the entry is."""

    at: datetime
    user_agent: str
    ip_address: str | None


def device_entries(
    *, user: User, current_session: str | None, current_device: str | None
) -> list[DeviceEntry]:
    """Every entry of ``user``: this browser first, then the most recently seen.
    ``current_session`` and ``current_device`` are the digests that make an entry "this
    device" (``services.current_digest``, ``accounts.devices.current_device_digest``)."""
    devices = list(KnownDevice.objects.filter(user=user).order_by("-last_seen", "-id"))
    by_device: dict[str, list[UserSession]] = defaultdict(list)
    alone: list[UserSession] = []
    trusted = {d.device_digest for d in devices}
    for session in live_sessions(user).order_by("-last_seen", "-id"):
        if session.device_digest in trusted:
            by_device[session.device_digest].append(session)
        else:
            alone.append(session)
    entries = [
        _device_entry(d, by_device[d.device_digest], current_session, current_device)
        for d in devices
    ] + [_session_entry(s, current_session) for s in alone]
    return sorted(entries, key=lambda e: (not e.is_current, -e.last_seen.timestamp()))


def _device_entry(
    device: KnownDevice,
    sessions: list[UserSession],
    current_session: str | None,
    current_device: str | None,
) -> DeviceEntry:
    seen = sorted(
        [_Seen(device.last_seen, device.user_agent, device.ip_address)]
        + [_Seen(s.last_seen, s.user_agent, s.ip_address) for s in sessions],
        key=lambda s: s.at,
        reverse=True,
    )
    # The latest of each that was recorded: a row may lack one (a client that sent no agent).
    agent = next((s.user_agent for s in seen if s.user_agent), "")
    ip = next((s.ip_address for s in seen if s.ip_address), None)
    client = describe_user_agent(agent)
    key = f"device-{device.pk}"
    return DeviceEntry(
        key=key,
        device_id=device.pk,
        session_id=None,
        name=device.name or client.name,
        custom_name=device.name,
        default_name=client.name,
        browser=client.browser,
        system=client.system,
        method=device.signin_method or NOT_RECORDED,
        place=place_of(ip),
        first_seen=min([device.first_seen] + [s.created_at for s in sessions]),
        last_seen=seen[0].at,
        sessions=len(sessions),
        confirmed=device.confirmed,
        is_current=(current_device is not None and device.device_digest == current_device)
        or any(s.session_digest == current_session for s in sessions),
    )


def _session_entry(
    session: UserSession, current_session: str | None
) -> DeviceEntry:
    client = describe_user_agent(session.user_agent)
    key = f"session-{session.pk}"
    return DeviceEntry(
        key=key,
        device_id=None,
        session_id=session.pk,
        name=client.name,
        custom_name="",
        default_name=client.name,
        browser=client.browser,
        system=client.system,
        method=session.signin_method or NOT_RECORDED,
        place=place_of(session.ip_address),
        first_seen=session.created_at,
        last_seen=session.last_seen,
        sessions=1,
        confirmed=False,
        is_current=current_session is not None and session.session_digest == current_session,
    )
