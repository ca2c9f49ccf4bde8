/**
 * The status page, rendered on the server: every number is in the HTML, so a phone on a weak link (or with
 * JavaScript off) reads a complete snapshot. The script (page-script.ts) only refreshes the numbers and
 * draws the last hour with uPlot. Action forms appear only when the page was opened with the valid token
 * (`/?token=…`); they post to this origin and work without the script.
 */
import type { HistorySeries } from './history.ts';
import type { StatusSnapshot } from './status-view.ts';

const esc = (v: unknown): string => String(v).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

export function bytesText(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

const num = (field: string, value: number, text = String(value)) => `<span data-field="${esc(field)}">${esc(text)}</span>`;

export function renderPage(s: StatusSnapshot, options: { token?: string; history: HistorySeries; pollMs: number }): string {
  const ready = s.ready.ready ? '<b class="ok" data-field="ready">ready</b>' : '<b class="bad" data-field="ready">NOT READY</b>';
  const sources = s.sources
    .map((x) => `<tr><td>${esc(x.name)}</td><td>${esc(x.stream)}</td><td>${esc(x.state)}</td><td>${num(`source.${x.name}.records`, x.records)}</td></tr>`)
    .join('');
  const streams = s.queue.streams
    .map(
      (x) =>
        `<tr><td>${esc(x.name)}</td><td>${num(`stream.${x.name}.records`, x.records)}</td><td>${esc(bytesText(x.bytes))}</td><td>${num(`stream.${x.name}.age`, x.oldestAgeSeconds, x.oldestAgeSeconds.toFixed(1))} s</td></tr>`,
    )
    .join('');
  const drops = Object.entries(s.queue.dropped)
    .flatMap(([stream, byReason]) => Object.entries(byReason).map(([reason, n]) => `<li>${esc(stream)}: ${esc(n)} ${esc(reason)}</li>`))
    .join('');
  const errors = s.lastErrors.map((e) => `<li><time>${esc(e.time)}</time> <b>${esc(e.level)}</b> ${esc(e.message)}</li>`).join('');
  const actions = options.token
    ? `<section><h2>Actions</h2>${['flush', s.forwarding.paused ? 'resume' : 'pause']
        .map(
          (a) =>
            `<form method="post" action="/actions/${a}"><input type="hidden" name="token" value="${esc(options.token)}"><button type="submit" id="action-${a}">${a}</button></form>`,
        )
        .join('')}</section>`
    : '<p class="muted">Read-only. Actions need the token: <code>edge-agent status --token</code>, then open <code>/?token=…</code>.</p>';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>edge-agent ${esc(s.device)}</title><link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/uplot.css"><link rel="stylesheet" href="/assets/page.css">
</head><body>
<header><h1>edge-agent <span data-field="device">${esc(s.device)}</span></h1>
<p>${ready} · version ${esc(s.version)} · up ${num('uptime', s.uptimeSeconds)} s · <span data-field="time">${esc(s.time)}</span></p>
<p>Readiness: sink <span data-field="ready.sink">${esc(s.ready.sink.detail)}</span>; backlog <span data-field="ready.backlog">${esc(s.ready.backlog.detail)}</span></p>
<p>Forwarding: <span data-field="forwarding">${esc(forwardingText(s))}</span> · previous run ended: ${esc(s.lastExit)}</p></header>
<section><h2>Queue</h2>
<p>${num('queue.records', s.queue.records)} records, <span data-field="queue.bytes">${esc(bytesText(s.queue.bytes))}</span> ·
in ${num('rate.in', s.rates.inPerSecond, s.rates.inPerSecond.toFixed(1))}/s · out ${num('rate.out', s.rates.outPerSecond, s.rates.outPerSecond.toFixed(1))}/s</p>
<table><thead><tr><th>stream</th><th>records</th><th>bytes</th><th>oldest</th></tr></thead><tbody>${streams}</tbody></table>
${drops ? `<p>Dropped:</p><ul>${drops}</ul>` : '<p>Dropped: none</p>'}</section>
<section id="plots" data-points="${options.history.time.length}" data-poll="${options.pollMs}"><h2>Last hour</h2><noscript>Plots need JavaScript; the numbers above are current as of loading.</noscript></section>
<section><h2>Sink</h2><p>${esc(s.sink.type)}: <span data-field="sink.connected">${s.sink.connected ? 'connected' : 'not connected'}</span> · reconnects ${num('sink.reconnects', s.sink.reconnects)}</p>
<p>Delivered ${num('sent.records', s.sent.records)} records in ${num('sent.batches', s.sent.batches)} batches (<span data-field="sent.bytes">${esc(bytesText(s.sent.bytes))}</span>) · retries ${num('sent.retries', s.sent.retries)} · set aside ${num('sent.rejected', s.sent.rejected)} · in flight ${num('sent.inFlight', s.sent.inFlight)}</p></section>
<section><h2>Sources</h2><table><thead><tr><th>source</th><th>stream</th><th>state</th><th>records</th></tr></thead><tbody>${sources}</tbody></table></section>
${actions}
<section><h2>Last errors</h2>${errors ? `<ul id="errors">${errors}</ul>` : '<p id="errors">none</p>'}</section>
<script src="/assets/uplot.js"></script><script src="/assets/page.js"></script>
</body></html>
`;
}

export function forwardingText(s: StatusSnapshot): string {
  if (s.forwarding.paused) return 'paused by an operator';
  if (s.forwarding.held.length > 0) return `held (${s.forwarding.held.join(', ')})`;
  return 'on';
}

export const PAGE_CSS = `body{font:15px/1.4 system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:0 1rem;color:#222}
h1{font-size:1.4rem;margin:.8rem 0 .2rem}h2{font-size:1.1rem;margin:1.2rem 0 .3rem}
table{border-collapse:collapse}td,th{padding:.15rem .6rem;border-bottom:1px solid #ddd;text-align:left}
.ok{color:#060}.bad{color:#b00}.muted{color:#666}form{display:inline;margin-right:.5rem}
button{font-size:1rem;padding:.3rem .9rem}ul{padding-left:1.2rem}time{color:#666}
#plots .u-wrap{margin-bottom:.6rem}`;
