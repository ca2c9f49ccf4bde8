/**
 * The status page's script, served as /assets/page.js: it polls /api/status and /api/history (same origin)
 * and updates the numbers in place and the three plots (queue depth, rates, oldest age over the last hour).
 * Plain ES2017 for any phone browser; no framework: the page must stay small on a weak link.
 */
export const PAGE_SCRIPT = `(function () {
  'use strict';
  var plots = document.getElementById('plots');
  var poll = Number(plots && plots.getAttribute('data-poll')) || 5000;
  var charts = [];
  function bytes(n) {
    if (n < 1024) return n + ' B';
    var u = ['KiB', 'MiB', 'GiB', 'TiB'], v = n / 1024, i = 0;
    while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
    return v.toFixed(1) + ' ' + u[i];
  }
  function set(field, text) {
    var nodes = document.querySelectorAll('[data-field="' + field + '"]');
    for (var i = 0; i < nodes.length; i++) nodes[i].textContent = text;
  }
  function forwarding(s) {
    if (s.forwarding.paused) return 'paused by an operator';
    if (s.forwarding.held.length) return 'held (' + s.forwarding.held.join(', ') + ')';
    return 'on';
  }
  function show(s) {
    var ready = document.querySelector('[data-field="ready"]');
    if (ready) { ready.textContent = s.ready.ready ? 'ready' : 'NOT READY'; ready.className = s.ready.ready ? 'ok' : 'bad'; }
    set('time', s.time); set('uptime', String(s.uptimeSeconds));
    set('ready.sink', s.ready.sink.detail); set('ready.backlog', s.ready.backlog.detail);
    set('forwarding', forwarding(s));
    set('queue.records', String(s.queue.records)); set('queue.bytes', bytes(s.queue.bytes));
    set('rate.in', s.rates.inPerSecond.toFixed(1)); set('rate.out', s.rates.outPerSecond.toFixed(1));
    s.queue.streams.forEach(function (x) { set('stream.' + x.name + '.records', String(x.records)); set('stream.' + x.name + '.age', x.oldestAgeSeconds.toFixed(1)); });
    s.sources.forEach(function (x) { set('source.' + x.name + '.records', String(x.records)); });
    set('sink.connected', s.sink.connected ? 'connected' : 'not connected'); set('sink.reconnects', String(s.sink.reconnects));
    set('sent.records', String(s.sent.records)); set('sent.batches', String(s.sent.batches)); set('sent.bytes', bytes(s.sent.bytes));
    set('sent.retries', String(s.sent.retries)); set('sent.rejected', String(s.sent.rejected)); set('sent.inFlight', String(s.sent.inFlight));
  }
  function draw(h) {
    if (typeof uPlot !== 'function' || !plots) return;
    var width = Math.max(280, Math.min(plots.clientWidth || 600, 900));
    var data = [
      [h.time, h.queueRecords],
      [h.time, h.inRate, h.outRate],
      [h.time, h.oldestAge]
    ];
    if (charts.length === 0) {
      var specs = [
        { title: 'Queue depth (records)', series: [{}, { label: 'records', stroke: '#2a6' }] },
        { title: 'Rates (records/s)', series: [{}, { label: 'in', stroke: '#26a' }, { label: 'out', stroke: '#a62' }] },
        { title: 'Oldest undelivered record (s)', series: [{}, { label: 'age', stroke: '#a26' }] }
      ];
      specs.forEach(function (spec, i) {
        charts.push(new uPlot({ title: spec.title, width: width, height: 160, series: spec.series, scales: { x: { time: true } } }, data[i], plots));
      });
    } else {
      charts.forEach(function (c, i) { c.setData(data[i]); });
    }
    plots.setAttribute('data-points', String(h.time.length));
  }
  function get(path) {
    return fetch(path, { headers: { accept: 'application/json' }, cache: 'no-store' }).then(function (r) {
      if (!r.ok) throw new Error(path + ': ' + r.status);
      return r.json();
    });
  }
  function tick() {
    Promise.all([get('/api/status'), get('/api/history')])
      .then(function (both) { show(both[0]); draw(both[1]); document.body.setAttribute('data-updated', both[0].time); })
      .catch(function () { set('ready.sink', 'the agent does not answer'); })
      .then(function () { setTimeout(tick, poll); });
  }
  tick();
})();
`;
