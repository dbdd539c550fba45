"""Times in the reader's own time zone (issue 19): every date on a page is a <time> in words
("just now", "3 days ago"); hovering it tells the exact moment in the reader's time and in UTC
(static/relatch/times.js; the server's title, for readers without JavaScript, is UTC alone).
"""

import re
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from playwright.sync_api import expect
from tests.browser.harness import Live, Visitor
from tests.browser.mfa_steps import ACCOUNT, PASSWORD

READER_ZONE = "Asia/Kolkata"  # UTC+05:30 all year: never the same clock time as UTC


def test_hovering_a_time_gives_the_readers_local_time_and_utc(
    make_visitor: Callable[[], Visitor], live: Live
) -> None:
    live.create_user("ines", PASSWORD)
    reader = make_visitor()
    zone = reader.context.new_cdp_session(reader.page)
    zone.send("Emulation.setTimezoneOverride", {"timezoneId": READER_ZONE})
    reader.cdp_sessions.append(zone)
    reader.sign_in("ines", PASSWORD)
    reader.see(ACCOUNT)

    moment = reader.page.locator("main time[datetime]").first
    expect(moment).to_have_text("just now")  # the sign-in itself, in the recent activity
    at = datetime.fromisoformat(moment.get_attribute("datetime") or "")
    local, utc = at.astimezone(ZoneInfo(READER_ZONE)), at.astimezone(ZoneInfo("UTC"))
    day = f"{local:%a} {local.day} {local:%b %Y}, {local:%H:%M} (your time) · "
    utc_part = f"{utc:%H:%M}" if local.date() == utc.date() else (
        f"{utc:%a} {utc.day} {utc:%b %Y}, {utc:%H:%M}"
    )
    expect(moment).to_have_attribute("title", day + utc_part + " UTC")
    # Every time on the page got one, not only the first.
    titles = reader.page.locator("time[datetime]").evaluate_all("ts => ts.map(t => t.title)")
    assert titles and all(re.search(r"\(your time\) · .+ UTC$", t) for t in titles), titles
