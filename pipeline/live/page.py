"""The wallboard page: one self-contained HTML document, built once at start.

No framework and no request to any other origin: the style and the script are inline,
and the Content-Security-Policy allows exactly them (by hash), a connection back to
this origin (the stream) and nothing else, so even a department name that looks like
markup can load nothing. The script reads its token from the page's own URL, follows
``/api/stream`` (the browser's EventSource reconnects by itself) and writes every figure
with ``textContent``. ``?tv=1`` is the large-type layout for a screen on the wall; below
640 px wide the phone layout stacks the tiles two by two.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

_STYLE = """
:root { color-scheme: dark; --bg: #0f1419; --card: #1a2129; --ink: #e6edf3; --dim: #8b98a5;
  --bad: #ff6b6b; --good: #3fb950; --warn: #d29922; }
* { box-sizing: border-box; }
body { margin: 0; padding: 16px; background: var(--bg); color: var(--ink);
  font: 16px/1.35 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 4px 16px; }
h1 { margin: 0; font-size: 1.5em; }
h2 { margin: 20px 0 8px; font-size: 1.05em; color: var(--dim); font-weight: 600; }
#status { font-size: .9em; color: var(--warn); }
#status.live { color: var(--good); }
.meta { color: var(--dim); }
#tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr));
  gap: 10px; margin-top: 14px; }
.tile { background: var(--card); border-radius: 8px; padding: 10px 12px; }
.label { display: block; color: var(--dim); font-size: .85em; }
.value { display: block; font-size: 2em; font-weight: 700; font-variant-numeric: tabular-nums; }
.bad { color: var(--bad); }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 6px 8px; text-align: right; border-bottom: 1px solid #2b3540; }
th:first-child, td:first-child { text-align: left; }
th { color: var(--dim); font-weight: 600; font-size: .85em; }
.scroll { overflow-x: auto; }
ul { margin: 0; padding-left: 18px; }
.columns { display: grid; grid-template-columns: repeat(auto-fit, minmax(280px, 1fr));
  gap: 0 24px; }
@media (max-width: 640px) {
  body { padding: 10px; font-size: 15px; }
  #tiles { grid-template-columns: 1fr 1fr; gap: 8px; }
  .value { font-size: 1.6em; }
  th, td { padding: 5px 4px; }
}
body.tv { font-size: 26px; padding: 28px; }
body.tv #tiles { grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 18px; }
body.tv .value { font-size: 2.4em; white-space: nowrap; }
body.tv .columns { display: none; }
"""

_SCRIPT = """
(function () {
  'use strict';
  var query = new URLSearchParams(location.search);
  var token = query.get('token') || '';
  if (query.get('tv') === '1') { document.body.classList.add('tv'); }
  var latest = null;
  function byId(id) { return document.getElementById(id); }
  function duration(s) {
    if (s === null || s === undefined) { return '\\u2014'; }
    s = Math.max(0, Math.round(s));
    if (s < 60) { return s + ' s'; }
    var m = Math.floor(s / 60);
    if (m < 60) { return m + ' min ' + String(s % 60).padStart(2, '0') + ' s'; }
    return Math.floor(m / 60) + ' h ' + String(m % 60).padStart(2, '0') + ' min';
  }
  function percent(x) {
    return x === null || x === undefined ? '\\u2014' : (100 * x).toFixed(1) + ' %';
  }
  function clock(t, zone) {
    return new Intl.DateTimeFormat('en-GB', {timeZone: zone, hour: '2-digit', minute: '2-digit',
      second: '2-digit'}).format(new Date(t * 1000));
  }
  function set(id, text, bad) {
    var el = byId(id);
    el.textContent = text;
    el.classList.toggle('bad', Boolean(bad));
  }
  function cell(row, text) {
    var td = document.createElement('td');
    td.textContent = text;
    row.appendChild(td);
  }
  function fill(id, rows) {
    var body = byId(id);
    body.replaceChildren();
    rows.forEach(function (cells) {
      var tr = document.createElement('tr');
      cells.forEach(function (c) { cell(tr, c); });
      body.appendChild(tr);
    });
  }
  function name(d) { return d === null ? '(none)' : d; }
  function render(d) {
    latest = d;
    var t = d.total, now = Date.now() / 1000;
    var down = d.instances.filter(function (i) { return i.disconnected_since !== null; });
    byId('tenant').textContent = d.tenant;
    byId('day').textContent = d.day + ' (' + d.time_zone + ')';
    byId('asof').textContent = 'as of ' + clock(d.as_of, d.time_zone);
    var longest = d.waiting.length ? now - d.waiting[0].since : null;
    set('f-waiting', String(t.waiting), t.waiting > 0);
    set('f-longest', duration(longest), longest !== null && longest > d.sla_seconds);
    set('f-open', String(t.open_attendances));
    set('f-finished', String(t.finished_today));
    set('f-sla', percent(t.service_level_today));
    byId('sla-label').textContent = 'Service level today (' + d.sla_seconds + ' s)';
    set('f-wait', duration(t.average_wait_seconds_today));
    set('f-handle', duration(t.average_handle_seconds_today));
    set('f-failures', String(d.delivery_failures_15m), d.delivery_failures_15m > 0);
    set('f-down', String(down.length), down.length > 0);
    fill('departments', d.departments.map(function (x) {
      return [name(x.department), x.open_attendances, x.waiting, duration(x.longest_wait_seconds),
        x.finished_today, percent(x.service_level_today), duration(x.average_wait_seconds_today),
        duration(x.average_handle_seconds_today)].map(String);
    }));
    var list = byId('instances');
    list.replaceChildren();
    down.forEach(function (i) {
      var li = document.createElement('li');
      li.className = 'bad';
      li.textContent = i.instance_id + ' disconnected since '
        + clock(i.disconnected_since, d.time_zone) + (i.error ? ' (' + i.error + ')' : '');
      list.appendChild(li);
    });
    if (!down.length) {
      var ok = document.createElement('li');
      ok.textContent = 'every number connected';
      list.appendChild(ok);
    }
    fill('waiting', d.waiting.slice(0, 10).map(function (w) {
      return ['#' + w.attendance, name(w.department), duration(now - w.since)];
    }));
    fill('operators', Object.keys(t.open_per_operator).map(function (o) {
      return [o, String(t.open_per_operator[o])];
    }));
    byId('status').textContent = d.caught_up ? 'live' : 'catching up';
    byId('status').classList.toggle('live', d.caught_up);
  }
  // Between two publications the waits still grow on screen.
  setInterval(function () {
    if (!latest || !latest.waiting.length) { return; }
    var now = Date.now() / 1000;
    byId('f-longest').textContent = duration(now - latest.waiting[0].since);
  }, 1000);
  var stream = new EventSource('/api/stream?token=' + encodeURIComponent(token));
  stream.onmessage = function (e) { render(JSON.parse(e.data)); };
  stream.onerror = function () {
    byId('status').textContent = 'reconnecting';
    byId('status').classList.remove('live');
  };
})();
"""


def _tile(figure: str, label: str, label_id: str = "") -> str:
    label_attr = f' id="{label_id}"' if label_id else ""
    return (
        f'<div class="tile" data-figure="{figure}"><span class="label"{label_attr}>{label}</span>'
        f'<span class="value" id="f-{figure}">\u2014</span></div>'
    )


_BODY = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>Contact centre now</title>
<style>{_STYLE}</style></head>
<body>
<header><h1>Now: <span id="tenant"></span></h1><span class="meta" id="day"></span>
<span class="meta" id="asof"></span><span id="status">connecting</span></header>
<section id="tiles">
{_tile("waiting", "Waiting for a first answer")}
{_tile("longest", "Longest wait")}
{_tile("open", "Open attendances")}
{_tile("finished", "Finished today")}
{_tile("sla", "Service level today", "sla-label")}
{_tile("wait", "Average wait today")}
{_tile("handle", "Average handle time today")}
{_tile("failures", "Delivery failures, 15 min")}
{_tile("down", "Numbers disconnected")}
</section>
<h2>Departments</h2>
<div class="scroll"><table><thead><tr><th>Department</th><th>Open</th><th>Waiting</th>
<th>Longest wait</th><th>Finished</th><th>Service level</th><th>Avg wait</th><th>Avg handle</th>
</tr></thead><tbody id="departments"></tbody></table></div>
<h2>WhatsApp numbers</h2>
<ul id="instances"></ul>
<div class="columns">
<div><h2>Waiting longest</h2><table><thead><tr><th>Attendance</th><th>Department</th>
<th>Waiting</th></tr></thead><tbody id="waiting"></tbody></table></div>
<div><h2>Open per operator</h2><table><thead><tr><th>Operator</th><th>Open</th></tr></thead>
<tbody id="operators"></tbody></table></div>
</div>
<script>{_SCRIPT}</script>
</body></html>
"""


def _hash(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


@dataclass(frozen=True)
class Page:
    html: bytes
    headers: dict[str, str]


def build() -> Page:
    policy = "; ".join(
        (
            "default-src 'none'",
            f"script-src {_hash(_SCRIPT)}",
            f"style-src {_hash(_STYLE)}",
            "connect-src 'self'",
            "img-src data:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )
    headers = {
        "Content-Type": "text/html; charset=utf-8",
        "Content-Security-Policy": policy,
        "Referrer-Policy": "no-referrer",  # the URL carries the viewer's token
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
    }
    return Page(_BODY.encode("utf-8"), headers)
