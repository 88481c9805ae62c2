/* Graphs of a Space's page (#graphs) and of the admin page (#admin-graphs), drawn with the
   vendored uPlot (static/vendor/, MIT). The data comes from the history API named by the
   panel's data-history (services/history.py): a point per minute for a day, per ten minutes
   for a week. Drawn when the panel is visible (uPlot needs a width), again each minute. */
(() => {
  'use strict';
  const panel = document.querySelector('#graphs, #admin-graphs');
  if (!panel || !window.uPlot) return;
  const rangeSelect = panel.querySelector('#graphs-range');
  const summary = panel.querySelector('#graphs-summary');
  const AWAKE = new Set(['RUNNING', 'RUNNING_BUILDING', 'RUNNING_APP_STARTING', 'APP_STARTING']);
  const COLORS = ['#6366f1', '#ef4444', '#10b981', '#f59e0b'];
  const plots = [];
  let timer = null;
  const range = { span: 3600, end: Date.now() / 1000 };

  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };

  function slot(name) {
    const figure = panel.querySelector(`[data-graph="${name}"]`);
    figure.querySelectorAll('.uplot, .empty, .bars').forEach((n) => n.remove());
    return figure;
  }

  /* One uPlot line chart: x in seconds, one array per series (null: a gap). */
  function line(name, xs, series, opts = {}) {
    const figure = slot(name);
    figure.dataset.points = String(xs.length);
    if (!xs.length) {
      figure.appendChild(el('p', 'empty', 'No data yet: a point is added every interval.'));
      return;
    }
    const width = Math.max(260, figure.clientWidth || panel.clientWidth / 2 - 40);
    const plot = new window.uPlot(
      {
        width,
        height: 170,
        legend: { show: true },
        scales: {
          // the whole range, however few points it has yet
          x: { time: true, range: () => [range.end - range.span, range.end] },
          y: { range: opts.range || ((u, min, max) => [0, Math.max(max, opts.floor || 1)]) } },
        series: [
          {},
          ...series.map((s, i) => ({
            label: s.label,
            stroke: COLORS[i % COLORS.length],
            width: 1.5,
            fill: i === 0 ? COLORS[0] + '22' : undefined,
            paths: opts.stepped ? window.uPlot.paths.stepped({ align: 1 }) : undefined,
            spanGaps: false,
          })),
        ],
        axes: [{}, { size: 50 }],
      },
      [xs, ...series.map((s) => s.values)],
      figure,
    );
    plots.push(plot);
  }

  /* Horizontal bars (HTML): build durations, busiest Spaces. */
  function bars(name, rows, unit) {
    const figure = slot(name);
    figure.dataset.points = String(rows.length);
    if (!rows.length) {
      figure.appendChild(el('p', 'empty', 'Nothing yet.'));
      return;
    }
    const max = Math.max(...rows.map((r) => r.value), 1);
    const list = el('ul', `bars ${name}`);
    rows.forEach((r) => {
      const li = el('li');
      const bar = el('span', `bar${r.failed ? ' failed' : ''}`);
      bar.style.width = `${Math.max(2, (100 * r.value) / max)}%`;
      const track = el('span', 'track');
      track.appendChild(bar);
      li.append(el('span', 'mono', r.label), track, el('span', 'mono', `${r.value} ${unit}`));
      if (r.title) li.title = r.title;
      list.appendChild(li);
    });
    figure.appendChild(list);
  }

  const sum = (values) => values.reduce((a, b) => a + (b || 0), 0);

  function drawSpace(h) {
    const p = h.points;
    const xs = p.map((q) => q.t);
    const requests = sum(p.map((q) => q.requests));
    const errors = sum(p.map((q) => q.errors));
    summary.textContent = `${requests} requests, ${errors} errors in range · a point every ${h.intervalS} s`;
    panel.dataset.requests = String(requests);
    line('traffic', xs, [
      { label: 'requests', values: p.map((q) => q.requests) },
      { label: 'errors', values: p.map((q) => q.errors) },
    ]);
    line('latency', xs, [{ label: 'ms', values: p.map((q) => q.latencyMs) }]);
    line('cpu', xs, [{ label: 'cores', values: p.map((q) => q.cpu) }], { floor: 0.1 });
    line('memory', xs, [
      { label: 'MB', values: p.map((q) => (q.memoryBytes == null ? null : q.memoryBytes / 1048576)) },
    ]);
    line('awake', xs, [{ label: 'awake', values: p.map((q) => (AWAKE.has(q.stage) ? 1 : 0)) }], {
      stepped: true,
      range: () => [0, 1.1],
    });
    const events = panel.querySelector('#graphs-events');
    events.replaceChildren();
    p.forEach((q, i) => {
      if (i > 0 && q.stage === p[i - 1].stage) return;
      const at = new Date(q.t * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
      events.appendChild(el('li', '', `${at} ${q.stage.toLowerCase().replace(/_/g, ' ')}`));
    });
    events.parentElement.appendChild(events); // below its chart
    bars(
      'builds',
      h.builds.map((b) => ({
        label: b.commit,
        value: b.seconds,
        failed: b.status !== 'succeeded',
        title: `${b.status} · ${b.finishedAt}`,
      })),
      's',
    );
  }

  function drawNode(h) {
    const p = h.points;
    const pct = (a, b) => (a == null || !b ? null : Math.round((1000 * a) / b) / 10);
    const last = p[p.length - 1];
    summary.textContent = last
      ? `now: CPU ${pct(last.cpu, 1)}%, memory ${pct(last.memoryBytes, last.memoryTotalBytes)}%, disk ${pct(last.diskBytes, last.diskTotalBytes)}%`
      : '';
    line(
      'node',
      p.map((q) => q.t),
      [
        { label: 'CPU %', values: p.map((q) => pct(q.cpu, 1)) },
        { label: 'memory %', values: p.map((q) => pct(q.memoryBytes, q.memoryTotalBytes)) },
        { label: 'disk %', values: p.map((q) => pct(q.diskBytes, q.diskTotalBytes)) },
      ],
      { range: () => [0, 100] },
    );
    bars('busiest', h.busiest.map((b) => ({ label: b.space, value: b.requests })), 'req');
  }

  async function refresh() {
    if (panel.offsetParent === null) return; // hidden tab: drawn when shown
    const url = `${panel.dataset.history}?range=${rangeSelect.value}`;
    const r = await fetch(url, { credentials: 'same-origin' });
    if (!r.ok) {
      summary.textContent = `history unavailable (${r.status})`;
      return;
    }
    const h = await r.json();
    range.span = h.rangeS;
    range.end = Date.now() / 1000;
    plots.splice(0).forEach((u) => u.destroy());
    if (panel.id === 'graphs') drawSpace(h);
    else drawNode(h);
    panel.dataset.drawn = String(Date.now());
  }

  function schedule() {
    refresh().catch((e) => {
      summary.textContent = `history unavailable (${e})`;
    });
    clearInterval(timer);
    timer = setInterval(() => refresh().catch(() => {}), 60000);
  }

  rangeSelect.addEventListener('change', schedule);
  window.addEventListener('hashchange', () => setTimeout(schedule, 0));
  schedule();
})();
