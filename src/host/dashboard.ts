// The live dashboard: one self-contained page (no external scripts: the daemon may run on an offline host) that
// polls the same HTTP API as the CLI every 2 s and shows guests, shares, offload modules, task response times and
// the share controller (response time against the SLO, share size against usage, decisions marked).
//
// Charts: Vega-Lite compiled to Vega in the page, SVG renderer. Vega and Vega-Lite (BSD-3) are already the
// project's plotting library (bench plots, `hylics sim` figures), so the dashboard adds no package; their browser
// builds are inlined into the page (no CDN, no second request: the page is the one path a TCP listener serves
// without the API token). SVG keeps axis titles, tick labels and units as text in the DOM: readable by screen
// readers and by the browser test, unlike a canvas chart library.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MiB } from '../core/units.js';

/** The browser (UMD) builds beside each package's entry point. */
function chartLibraries(): string {
  const build = (pkg: string, file: string): string => join(dirname(fileURLToPath(import.meta.resolve(pkg))), file);
  return [build('vega', 'vega.min.js'), build('vega-lite', 'vega-lite.min.js')]
    .map((f) => `<script>${readFileSync(f, 'utf8').replaceAll('</script', '<\\/script')}</script>`).join('\n');
}

let page: string | undefined;

export function dashboardHtml(): string {
  page ??= html(chartLibraries());
  return page;
}

const POLL_MS = 2000;
/** How much history the charts show (the profile ring and the page's own history are cut to it). */
const WINDOW_MS = 30 * 60 * 1000;

function html(libs: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Hylics</title>
<style>
 body{font:14px system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}
 h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:0 0 6px} h3{font-size:13px;margin:2px 0;font-weight:600}
 .sub{color:#555;margin-bottom:16px} .muted{color:#777}
 table{border-collapse:collapse;width:100%;background:#fff;margin-bottom:8px} th,td{padding:5px 9px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
 th{background:#f0f0f0;font-weight:600} td.num,th.num{text-align:right;font-variant-numeric:tabular-nums} .ok{color:#1a7f37} .bad{color:#c62828}
 .bar{height:10px;background:#e5e7eb;border-radius:5px;overflow:hidden;width:120px;display:inline-block;vertical-align:middle;margin-right:6px}
 .bar>i{display:block;height:100%;background:#3b82f6}
 section.guest{background:#fff;border:1px solid #e5e7eb;border-radius:6px;padding:12px;margin:16px 0}
 .charts{display:flex;flex-wrap:wrap;gap:18px}
 .ctl{margin:0 0 8px} .tag{display:inline-block;padding:1px 6px;border-radius:4px;background:#eef2ff;color:#3730a3;font-size:12px}
 .off{background:#f3f4f6;color:#6b7280}
 .facts{margin:6px 0;font-size:13px} table.small{font-size:12px} details{margin-top:6px} #guests td{white-space:nowrap}
</style>
${libs}
</head><body>
<h1>Hylics</h1><div class="sub"><span id="status">connecting…</span> · <span id="updated" class="muted"></span></div>
<table><thead><tr><th>guest</th><th>driver</th><th>status</th><th>agent</th><th>address</th><th class="num">CPUs</th><th class="num">memory</th><th>share used / size</th><th class="num">modules</th><th class="num">offload sent</th><th>tasks: count · mean · p95</th><th>controller</th></tr></thead>
<tbody id="guests"></tbody></table>
<div id="cards"></div>
<script>
'use strict';
const POLL_MS = ${POLL_MS}, WINDOW_MS = ${WINDOW_MS};
const MiB = ${MiB};
// a TCP listener wants the API token: given once as /#token=..., kept for this tab only, never sent in a URL
const tokenIn = new URLSearchParams(location.hash.slice(1)).get('token');
if (tokenIn) { sessionStorage.setItem('hylics-token', tokenIn); history.replaceState(null, '', location.pathname); }
const auth = sessionStorage.getItem('hylics-token') ? { authorization: 'Bearer ' + sessionStorage.getItem('hylics-token') } : {};
class HttpError extends Error { constructor(status, code, msg) { super(msg); this.status = status; this.code = code; } }
async function get(path) {
  const r = await fetch(path, { headers: auth, cache: 'no-store' });
  if (!r.ok) {
    const body = await r.json().catch(() => ({}));
    throw new HttpError(r.status, body.error && body.error.code, 'HTTP ' + r.status + (r.status === 401 ? ' (open this page as /#token=<the token in the state dir\\'s api-token>)' : ''));
  }
  return r.json();
}
/** The controller's routes: undefined on 404 (no settings for the guest: HYLICS_ERR_CONTROL_NOT_SET, asked again
 * next poll; no such route on an older daemon: HYLICS_ERR_NOT_FOUND, asked again after 30 s). */
const absent = new Map();
async function optional(key, path) {
  if ((absent.get(key) || 0) > Date.now()) return undefined;
  try { return await get(path); } catch (e) {
    if (e.status !== 404) throw e;
    if (e.code === 'HYLICS_ERR_NOT_FOUND') absent.set(key, Date.now() + 30000);
    return undefined;
  }
}

const esc = (t) => String(t).replace(/[&<>"']/g, (c) => '&#' + c.charCodeAt(0) + ';'); // names come from guests: never trust them
const fmtBytes = (b) => { const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB']; let i = 0; while (b >= 1024 && i < 4) { b /= 1024; i++; } return b.toFixed(i ? 1 : 0) + ' ' + u[i]; };
const fmtMs = (ms) => ms == null ? '–' : ms >= 10000 ? (ms / 1000).toFixed(1) + ' s' : ms >= 1000 ? (ms / 1000).toFixed(2) + ' s' : ms >= 10 ? ms.toFixed(0) + ' ms' : ms.toFixed(2) + ' ms';
const fmtTime = (t) => new Date(t).toLocaleTimeString([], { hour12: false });

// ---- charts (Vega-Lite specs; data sets are replaced on every poll) ----
const ACTIONS = ['grow', 'shrink', 'hold', 'clamped', 'refused'];
const ACTION_COLORS = ['#16a34a', '#ea580c', '#9ca3af', '#7c3aed', '#dc2626'];
const X = { field: 't', type: 'temporal', title: 'time', axis: { format: '%H:%M:%S', labelOverlap: 'greedy', labelSeparation: 6, tickCount: 4, grid: false } };
function decisionLayer() {
  // holds drawn faint: at a short interval they are most decisions, and grow/shrink are what a reader looks for
  return { data: { name: 'decisions' }, mark: { type: 'rule', strokeWidth: 1.5 },
    encoding: { x: X, opacity: { condition: { test: "datum.action === 'hold'", value: 0.3 }, value: 0.85 }, color: { field: 'action', type: 'nominal', scale: { domain: ACTIONS, range: ACTION_COLORS }, legend: { title: 'decision', orient: 'right' } },
      tooltip: [{ field: 't', type: 'temporal', title: 'time', format: '%H:%M:%S' }, { field: 'action' }, { field: 'target', title: 'target (MiB)', format: '.1f' }, { field: 'reason' }] } };
}
function lineLayer(yTitle, names, colors, dash) {
  return { data: { name: 'series' }, mark: { type: 'line', interpolate: 'step-after', strokeWidth: 2, point: { filled: true, size: 10 } },
    encoding: { x: X, y: { field: 'v', type: 'quantitative', title: yTitle, scale: { zero: true, nice: true }, axis: { format: ',~r' } },
      color: { field: 's', type: 'nominal', scale: { domain: names, range: colors }, legend: { title: null, orient: 'bottom', direction: 'horizontal' } },
      strokeDash: { field: 's', type: 'nominal', scale: { domain: names, range: dash } },
      tooltip: [{ field: 't', type: 'temporal', title: 'time', format: '%H:%M:%S' }, { field: 's', title: 'series' }, { field: 'v', title: yTitle, format: '.3~f' }] } };
}
// resize: lay out again on every update (legends and tick labels grow as data comes in)
const base = { $schema: 'https://vega.github.io/schema/vega-lite/v5.json', width: 340, height: 150, autosize: { type: 'pad', resize: true }, config: { font: 'system-ui, sans-serif', axis: { titleFontSize: 11, labelFontSize: 10 }, legend: { labelFontSize: 11 } } };
const SPECS = {
  share: () => ({ ...base, resolve: { scale: { color: 'independent', strokeDash: 'independent' } },
    layer: [lineLayer('share (MiB)', ['size', 'used', 'target'], ['#1d4ed8', '#60a5fa', '#16a34a'], [[1, 0], [1, 0], [4, 3]]), decisionLayer()] }),
  response: () => ({ ...base, resolve: { scale: { color: 'independent', strokeDash: 'independent' } },
    layer: [
      // the SLO band: at or below the SLO is within it (green); the dashed line is the SLO itself
      { data: { name: 'slo' }, mark: { type: 'rect', color: '#16a34a', opacity: 0.08 }, encoding: { y: { field: 'lo', type: 'quantitative' }, y2: { field: 'slo' } } },
      { data: { name: 'slo' }, mark: { type: 'rule', color: '#dc2626', strokeDash: [6, 4], strokeWidth: 1.5 }, encoding: { y: { field: 'slo', type: 'quantitative' } } },
      { data: { name: 'slo' }, mark: { type: 'text', align: 'left', baseline: 'bottom', dx: 4, dy: -2, color: '#dc2626', fontSize: 11 }, encoding: { x: { value: 0 }, y: { field: 'slo', type: 'quantitative' }, text: { field: 'label' } } },
      lineLayer('response time (s)', ['mean', 'p95'], ['#f59e0b', '#b45309'], [[1, 0], [3, 2]]),
      decisionLayer(),
    ] }),
  offload: () => ({ ...base, layer: [{ data: { name: 'series' }, mark: { type: 'line', interpolate: 'step-after', strokeWidth: 2 },
    encoding: { x: X, y: { field: 'v', type: 'quantitative', title: 'offload sent (MiB/s)', scale: { zero: true, nice: true }, axis: { format: ',~r' } },
      color: { field: 's', type: 'nominal', legend: { title: null, orient: 'bottom', direction: 'horizontal' } },
      tooltip: [{ field: 't', type: 'temporal', title: 'time', format: '%H:%M:%S' }, { field: 's', title: 'module' }, { field: 'v', title: 'MiB/s', format: '.3~f' }] } }] }),
};
function makeChart(el, kind) {
  const spec = vegaLite.compile(SPECS[kind]()).spec;
  const view = new vega.View(vega.parse(spec), { renderer: 'svg', container: el, hover: true });
  view.runAsync();
  return view;
}
async function setData(view, sets) {
  for (const [name, values] of Object.entries(sets)) view.data(name, values);
  await view.runAsync();
}

// ---- per guest state: charts, the page's own history (used when the daemon has no profile route) ----
const cards = new Map();
function card(name) {
  let c = cards.get(name);
  if (c) return c;
  const el = document.createElement('section');
  el.className = 'guest'; el.dataset.guest = name;
  el.innerHTML = '<h2>' + esc(name) + '</h2><div class="ctl"></div><div class="charts">'
    + '<div class="chart" data-chart="share"><h3></h3><div class="plot"></div></div>'
    + '<div class="chart" data-chart="response"><h3></h3><div class="plot"></div></div>'
    + '<div class="chart" data-chart="offload"><h3></h3><div class="plot"></div></div></div>'
    + '<div class="facts muted"></div><div class="modules"></div><div class="decisions"></div>';
  document.getElementById('cards').appendChild(el);
  const views = {};
  for (const k of Object.keys(SPECS)) views[k] = makeChart(el.querySelector('[data-chart="' + k + '"] .plot'), k);
  c = { el, views, hist: [], modBytes: new Map(), offload: [] };
  cards.set(name, c);
  return c;
}
function dropCard(name) { const c = cards.get(name); if (!c) return; for (const v of Object.values(c.views)) v.finalize(); c.el.remove(); cards.delete(name); }
const q = (c, sel) => c.el.querySelector(sel);
const trim = (arr, now) => { while (arr.length && arr[0].t < now - WINDOW_MS) arr.shift(); };

function taskSummary(tasks) {
  const n = tasks.reduce((a, t) => a + t.count, 0);
  const mean = n ? tasks.reduce((a, t) => a + t.meanMs * t.count, 0) / n : null;
  const p95 = tasks.length ? Math.max(...tasks.map((t) => t.p95Ms)) : null;
  return { n, mean, p95 };
}

async function guestTick(g, now) {
  const c = card(g.name);
  const [modules, control, profile, log] = await Promise.all([
    get('v1/guests/' + g.name + '/modules').catch(() => []),
    optional(g.name + ' control', 'v1/guests/' + g.name + '/control'),
    optional(g.name + ' profile', 'v1/guests/' + g.name + '/profile?since=' + (now - WINDOW_MS)),
    optional(g.name + ' log', 'v1/guests/' + g.name + '/control/log?limit=200'),
  ]);
  const ts = taskSummary(g.tasks);
  c.hist.push({ t: now, size: g.share.sizeBytes, used: g.share.usedBytes, mean: ts.mean, p95: ts.p95 }); trim(c.hist, now);

  // offload: bytes sent per module, and by socket handoff (GuestView.offload.socket, where the daemon has it),
  // between two polls
  const mods = Array.isArray(modules) ? modules : [];
  const sock = g.offload && g.offload.socket;
  const counters = mods.map((m) => ({ id: m.id, label: m.id + ' (' + m.kind + ')', bytes: m.totals.bytes }));
  if (sock) counters.push({ id: ' socket', label: 'socket handoff', bytes: sock.bytes });
  let sent = 0;
  for (const k of counters) {
    sent += k.bytes;
    const prev = c.modBytes.get(k.id);
    if (prev) c.offload.push({ t: now, s: k.label, v: Math.max(0, k.bytes - prev.bytes) / MiB / ((now - prev.t) / 1000) });
    c.modBytes.set(k.id, { t: now, bytes: k.bytes });
  }
  trim(c.offload, now);

  // share size and usage: the daemon's profile (it outlives this page; a point per profiler interval) together
  // with this page's own polls (every 2 s: a resize shows at once). Response times: the profile's per-interval
  // mean and p95 when there is a profile, else the per-task window of GuestView (the mean and p95 of recent reports)
  const points = profile && Array.isArray(profile.points) ? profile.points : [];
  const shareRows = [], respRows = [];
  const add = (t, size, used, mean, p95) => {
    shareRows.push({ t, s: 'size', v: size / MiB }, { t, s: 'used', v: used / MiB });
    if (mean != null) respRows.push({ t, s: 'mean', v: mean / 1000 });
    if (p95 != null) respRows.push({ t, s: 'p95', v: p95 / 1000 });
  };
  for (const p of points) add(p.t, p.sizeBytes, p.usedBytes, p.responseMeanMs, p.p95Ms);
  for (const h of c.hist) add(h.t, h.size, h.used, points.length ? null : h.mean, points.length ? null : h.p95);
  shareRows.sort((a, b) => a.t - b.t);
  const decisions = log && Array.isArray(log.decisions) ? log.decisions.filter((d) => d.t >= now - WINDOW_MS) : [];
  for (const d of decisions) shareRows.push({ t: d.t, s: 'target', v: d.targetBytes / MiB });
  const marks = decisions.map((d) => ({ t: d.t, action: d.action, target: d.targetBytes / MiB, reason: d.reason }));
  const ctlOn = control && control.scheme && control.scheme !== 'off';
  const slo = ctlOn && control.sloMs ? [{ lo: 0, slo: control.sloMs / 1000, label: 'SLO ' + fmtMs(control.sloMs) }] : [];

  q(c, '[data-chart="share"] h3').textContent = 'Share: ' + fmtBytes(g.share.usedBytes) + ' used of ' + fmtBytes(g.share.sizeBytes) + (points.length ? '' : ' (since this page opened)');
  q(c, '[data-chart="response"] h3').textContent = 'Task response time: mean ' + fmtMs(ts.mean) + ', p95 ' + fmtMs(ts.p95) + (slo.length ? ' · SLO ' + fmtMs(control.sloMs) : '');
  q(c, '[data-chart="offload"] h3').textContent = 'Offload: ' + fmtBytes(sent) + ' sent by ' + mods.length + ' module' + (mods.length === 1 ? '' : 's') + (sock ? ' and ' + sock.handoffs + ' socket handoff' + (sock.handoffs === 1 ? '' : 's') : '');
  await Promise.all([
    setData(c.views.share, { series: shareRows, decisions: marks }),
    setData(c.views.response, { series: respRows, decisions: marks, slo }),
    setData(c.views.offload, { series: c.offload }),
  ]);

  const ctl = q(c, '.ctl');
  if (!control) ctl.innerHTML = '<span class="tag off">controller off</span> <span class="muted">no controller for this guest (hylics control set)</span>';
  else if (!ctlOn) ctl.innerHTML = '<span class="tag off">controller off</span> <span class="muted">scheme off: the share keeps its size</span>';
  else {
    const last = control.lastDecision;
    ctl.innerHTML = '<span class="tag">controller ' + esc(control.scheme) + '</span> SLO ' + fmtMs(control.sloMs) + (control.task ? ' on task ' + esc(control.task) : '')
      + ' · share ' + fmtBytes(control.minBytes) + ' – ' + fmtBytes(control.maxBytes) + ' · interval ' + fmtMs(control.intervalMs)
      + (control.nextDecisionAt ? ' · next decision ' + fmtTime(control.nextDecisionAt) : '') + (control.calibrated ? ' · calibrated' : ' · not calibrated')
      + (last ? ' · last: <b>' + esc(last.action) + '</b> ' + esc(last.reason) : '');
  }
  // the guest's tier (profile intervals whose tasks said which tier served them: their ratios weighted by the
  // interval's tasks) and its socket offload, in words
  const tiered = points.filter((p) => p.hitRatio != null);
  const facts = [];
  if (tiered.length) {
    const w = tiered.reduce((a, p) => a + Math.max(1, p.tasks), 0);
    const ratio = tiered.reduce((a, p) => a + p.hitRatio * Math.max(1, p.tasks), 0) / w;
    const last = tiered[tiered.length - 1], end = points[points.length - 1];
    facts.push('memory-tier hit ratio ' + (100 * ratio).toFixed(0) + ' % over the charts (last interval with tier reports: ' + (100 * last.hitRatio).toFixed(0) + ' % at ' + fmtTime(last.t) + ') · ' + end.evictions + ' evictions, ' + end.promotions + ' promotions');
  }
  if (sock) {
    const fb = Object.entries(sock.fallbacks || {}).map(([r, n]) => esc(r) + ' ' + n).join(', ');
    // how the host had the sockets: the descriptor copy (fd) or the TCP_REPAIR handoff (repair)
    const by = sock.byCopy ? ' (' + sock.byCopy.fd + ' descriptor copy, ' + sock.byCopy.repair + ' TCP_REPAIR)' : '';
    const refused = Object.entries(sock.fdRefused || {}).map(([r, n]) => esc(r) + ' ' + n).join(', ');
    facts.push('socket offload ' + (sock.available ? 'available' : 'unavailable' + (sock.reason ? ' (' + esc(sock.reason) + ')' : '')) + ' · ' + sock.handoffs + ' handoffs' + by + ', ' + fmtBytes(sock.bytes) + ', ' + sock.inFlight + ' in flight'
      + (refused ? ' · descriptor copies refused: ' + refused : '')
      + (sock.latencyMs && sock.latencyMs.count ? ' · handoff p50 ' + fmtMs(sock.latencyMs.p50) + ', p99 ' + fmtMs(sock.latencyMs.p99) : '') + (fb ? ' · kept in the guest: ' + fb : ''));
  }
  q(c, '.facts').innerHTML = facts.join('<br>');
  q(c, '.modules').innerHTML = mods.length === 0 ? '' : '<table class="small"><thead><tr><th>module</th><th>kind</th><th>serves</th><th>guest port</th><th class="num">requests</th><th class="num">sent</th><th class="num">errors</th></tr></thead><tbody>'
    + mods.map((m) => '<tr><td>' + esc(m.id) + '</td><td>' + esc(m.kind) + '</td><td>' + esc('/' + m.root.replace(/^[/]/, '')) + '</td><td>' + esc(m.port) + '</td><td class="num">' + m.totals.requests + '</td><td class="num">' + fmtBytes(m.totals.bytes) + '</td><td class="num">' + m.totals.errors + '</td></tr>').join('')
    + '</tbody></table>';
  q(c, '.decisions').innerHTML = decisions.length === 0 ? '' : '<details open><summary>last decisions</summary><table class="small"><thead><tr><th>time</th><th>action</th><th class="num">λ (1/s)</th><th class="num">mean</th><th class="num">p95</th><th class="num">size</th><th class="num">target</th><th class="num">applied</th><th>reason</th></tr></thead><tbody>'
    + decisions.slice(-8).reverse().map((d) => '<tr><td>' + fmtTime(d.t) + '</td><td>' + esc(d.action) + '</td><td class="num">' + Number(d.lambda).toFixed(3) + '</td><td class="num">' + fmtMs(d.responseMeanMs) + '</td><td class="num">' + fmtMs(d.p95Ms) + '</td><td class="num">' + fmtBytes(d.sizeBytes) + '</td><td class="num">' + fmtBytes(d.targetBytes) + '</td><td class="num">' + fmtBytes(d.appliedBytes) + '</td><td>' + esc(d.reason) + '</td></tr>').join('')
    + '</tbody></table></details>';
  return { sent, modules: mods.length, control: !control ? 'off' : ctlOn ? esc(control.scheme) + ' · SLO ' + fmtMs(control.sloMs) : 'off', ts };
}

let busy = false;
async function tick() {
  if (busy) return; // a slow daemon: never pile up polls
  busy = true;
  try {
    const now = Date.now();
    const [s, gs] = await Promise.all([get('v1/status'), get('v1/guests')]);
    document.getElementById('status').textContent = 'hylicsd ' + s.version + ' · pid ' + s.pid + ' · ' + s.guestsRunning + '/' + s.guests + ' guests running · shares ' + fmtBytes(s.shareBytesUsed) + ' used of ' + fmtBytes(s.shareBytesTotal);
    for (const name of [...cards.keys()]) if (!gs.some((g) => g.name === name)) dropCard(name);
    const rows = [];
    for (const g of gs) {
      const x = await guestTick(g, now);
      const pct = g.share.sizeBytes ? 100 * g.share.usedBytes / g.share.sizeBytes : 0;
      rows.push('<tr data-guest="' + esc(g.name) + '"><td>' + esc(g.name) + '</td><td>' + esc(g.driver) + '</td><td class="' + (g.status === 'running' ? 'ok' : 'bad') + '">' + esc(g.status) + '</td><td>' + (g.agentConnected ? '✓ connected' : '✗ not connected') + '</td><td>' + esc(g.address) + '</td><td class="num">' + g.cpus + '</td><td class="num">' + fmtBytes(g.memoryBytes) + '</td>'
        + '<td class="share"><span class="bar"><i style="width:' + pct.toFixed(1) + '%"></i></span>' + fmtBytes(g.share.usedBytes) + ' / ' + fmtBytes(g.share.sizeBytes) + ' (' + pct.toFixed(0) + ' %)</td>'
        + '<td class="num">' + x.modules + '</td><td class="num">' + fmtBytes(x.sent) + '</td>'
        + '<td>' + (g.tasks.length ? g.tasks.map((t) => esc(t.name) + ': ' + t.count + ' · ' + fmtMs(t.meanMs) + ' · ' + fmtMs(t.p95Ms)).join('<br>') : '<span class="muted">none reported</span>') + '</td><td>' + x.control + '</td></tr>');
    }
    document.getElementById('guests').innerHTML = rows.join('') || '<tr><td colspan="12">no guests</td></tr>';
    document.getElementById('updated').textContent = 'updated ' + fmtTime(now) + ', every ' + POLL_MS / 1000 + ' s';
  } catch (e) {
    document.getElementById('status').textContent = 'daemon unreachable: ' + e.message;
  } finally { busy = false; }
}
tick(); setInterval(tick, POLL_MS);
</script></body></html>`;
}
