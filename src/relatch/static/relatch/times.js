/*
 * Relatch: every <time datetime="..."> says, on hover, when that is in the reader's own time
 * zone, next to the UTC time. The server writes the UTC time into the title (what readers
 * without JavaScript get, and what mails say); nobody should have to convert "14:04 UTC" in
 * their head to know when their account was touched. A served file (strict CSP: no inline
 * script), loaded with defer by base.html.
 *
 *   title="Mon 7 Dec 2026, 15:04 (your time) · 14:04 UTC"
 */
(function () {
  "use strict";

  var FIELDS = {
    weekday: "short", day: "numeric", month: "short", year: "numeric",
    hour: "2-digit", minute: "2-digit", hourCycle: "h23"
  };

  function formatter(timeZone) {
    var options = Object.assign({}, FIELDS);
    if (timeZone) {
      options.timeZone = timeZone;
    }
    return new Intl.DateTimeFormat("en-GB", options); // the site's language, the reader's zone
  }

  // From parts, not format(): the same "Mon 7 Dec 2026, 15:04" whatever the engine's commas.
  function parts(format, moment) {
    var found = {};
    format.formatToParts(moment).forEach(function (part) {
      found[part.type] = part.value;
    });
    return {
      day: found.weekday + " " + found.day + " " + found.month + " " + found.year,
      time: found.hour + ":" + found.minute
    };
  }

  function describe(local, utc, moment) {
    var here = parts(local, moment);
    var there = parts(utc, moment);
    if (here.day === there.day && here.time === there.time) {
      return there.day + ", " + there.time + " UTC"; // the reader lives on UTC
    }
    var shown = here.day + ", " + here.time + " (your time) · ";
    return shown + (here.day === there.day ? there.time : there.day + ", " + there.time) + " UTC";
  }

  function start() {
    if (!window.Intl || typeof Intl.DateTimeFormat !== "function") {
      return; // the UTC title stays
    }
    var local = formatter(null);
    var utc = formatter("UTC");
    if (typeof local.formatToParts !== "function") {
      return;
    }
    var times = document.querySelectorAll("time[datetime]");
    for (var i = 0; i < times.length; i += 1) {
      var moment = new Date(times[i].getAttribute("datetime"));
      // A date alone ("2026-12-07") or an unreadable value keeps the server's title.
      if (!isNaN(moment.getTime()) && times[i].getAttribute("datetime").indexOf("T") > 0) {
        times[i].title = describe(local, utc, moment);
      }
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
