// The built-in dashboard in a real browser (Debian's chromium, driven by playwright-core; no browser is downloaded)
// against a real hylicsd with a real sandbox guest: what a person sees — the guest row with its share numbers,
// tasks and offload, charts with axis titles and units, the controller state — and that it updates live when the
// share is resized. The browser reaches the daemon's Unix socket through a TCP relay, as an operator would with
// `ssh -L 8080:/var/lib/hylics/hylicsd.sock host`.
// HYLICS_DASHBOARD_SCREENSHOT=PATH saves a full-page screenshot there (docs/dashboard.png is made this way).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer, connect, type AddressInfo, type Server } from 'node:net';
import { get as httpGet } from 'node:http';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { GuestView } from '../../src/core/api.js';
import { apiRequest, apiSocket } from '../../src/cli/client.js';
import { NODE_BIN, entryArgv } from '../../src/os/self.js';
import { dashboardHtml } from '../../src/host/dashboard.js';
import { startDaemon, stopDaemon, tempStateDir } from '../helpers/cli.js';

const CHROMIUM = '/usr/bin/chromium';
const skip = process.getuid?.() !== 0 ? 'needs root (daemon: mounts, namespaces)' : !existsSync(CHROMIUM) ? 'needs chromium (apt-get install chromium)' : false;
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const MiB = 1024 * 1024;

/** A loopback TCP port relayed to the daemon's API socket. */
async function relay(socketPath: string): Promise<Server> {
  const srv = createServer((c) => {
    const u = connect(socketPath);
    c.pipe(u).pipe(c);
    c.on('error', () => u.destroy());
    u.on('error', () => c.destroy());
  });
  await new Promise<void>((res) => srv.listen(0, '127.0.0.1', res));
  return srv;
}

/** Download a URL, resolving with the byte count. */
function download(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    httpGet(url, (res) => {
      let n = 0;
      res.on('data', (c: Buffer) => { n += c.length; });
      res.on('end', () => (res.statusCode === 200 ? resolve(n) : reject(new Error(`${url}: HTTP ${res.statusCode}`))));
    }).on('error', reject);
  });
}

/** Poll `read` until `ok` holds on its value (the page updates every 2 s); fails with the last value seen. */
async function eventually<T>(
  what: string,
  read: () => Promise<T>,
  ok: (v: T) => boolean,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) assert.fail(`${what}: still ${JSON.stringify(v)} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Texts of an element's SVG chart: axis titles, tick labels, legends. */
const chartTexts = (page: Page, guest: string, chart: string): Promise<string[]> =>
  page.locator(`section.guest[data-guest="${guest}"] [data-chart="${chart}"] svg text`).allTextContents();

test('dashboard page: self-contained (no external URL loaded) and every script parses', () => {
  const html = dashboardHtml();
  assert.doesNotMatch(html, /<script[^>]+src=|<link[^>]+href=/, 'no external scripts or stylesheets');
  const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]!);
  assert.equal(scripts.length, 3, 'vega, vega-lite and the page');
  // the page's code lives in a TypeScript template literal, where a lost backslash breaks it: parse, do not run
  for (const code of scripts) assert.doesNotThrow(() => new Function(code));
});

test('dashboard in headless Chromium: guest, share, tasks, offload, charts with axes and units, live update', { skip, timeout: 300_000 }, async (t) => {
  const dir = await tempStateDir('hylics-dash-');
  const guest = `dash${process.pid % 100000}`;
  const daemon = await startDaemon(dir);
  let browser: Browser | undefined;
  let srv: Server | undefined;
  t.after(async () => {
    await browser?.close().catch(() => undefined);
    srv?.close();
    await apiRequest(dir, 'DELETE', `/v1/guests/${guest}`).catch(() => undefined);
    await stopDaemon(daemon);
    await rm(dir, { recursive: true, force: true });
  });
  const exec = (argv: string[]): Promise<{ exitCode: number | null; stdout: string; stderr: string }> =>
    apiRequest(dir, 'POST', `/v1/guests/${guest}/exec`, { argv, timeoutMs: 120_000 });

  const g = await apiRequest<GuestView>(dir, 'POST', '/v1/guests', { name: guest, shareSize: '16M', memory: '256M' });
  // a task reported through track() (compression in the guest), a file in the share, an offload module serving it
  const task = await exec([NODE_BIN, ...entryArgv('guest/demo-task'), 'compress', '--share', '/mnt/hylics', '--size', '1M']);
  assert.equal(task.exitCode, 0, task.stderr);
  const w = await exec(['sh', '-c', 'head -c 2097152 /dev/urandom > /mnt/hylics/clip.bin']);
  assert.equal(w.exitCode, 0, w.stderr);
  const mod = await apiRequest<{ id: string }>(dir, 'POST', `/v1/guests/${guest}/modules`, { kind: 'http', root: '/', port: 8080 });

  srv = await relay(apiSocket(dir));
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(`http://127.0.0.1:${(srv.address() as AddressInfo).port}/`);

  // the guest row: name, status, agent, address, share used / size, the task, the module
  const row = page.locator(`#guests tr[data-guest="${guest}"]`);
  await row.waitFor({ timeout: 20_000 }).catch(async (e: Error) => {
    assert.fail(`no guest row: ${e.message}; page status: ${await page.locator('#status').innerText()}; page errors: ${pageErrors.join('; ')}`);
  });
  const rowText = async (): Promise<string> => (await row.innerText()).replace(/\s+/g, ' ');
  const text = await eventually('the guest row shows the task', rowText, (v) => v.includes('compress'));
  for (const want of ['running', 'connected', g.address, '/ 16.0 MiB', 'compress: 1', 'sandbox']) assert.ok(text.includes(want), `guest row shows ${want}: ${text}`);
  assert.match(await page.locator('#status').innerText(), /1\/1 guests running/);

  // offload: the page turns module byte counters into a rate between two polls; serve while it watches
  for (let i = 0; i < 6; i++) {
    assert.equal(await download(`http://${g.address}:8080/clip.bin`), 2 * MiB);
    await new Promise((r) => setTimeout(r, 700));
  }
  const card = page.locator(`section.guest[data-guest="${guest}"]`);
  await eventually('the offload title counts the bytes sent', () => card.locator('[data-chart="offload"] h3').innerText(), (v) => /12\.0 MiB sent by 1 module/.test(v));
  assert.match(await card.locator('.modules').innerText(), new RegExp(`${mod.id}\\s+http\\s+/\\s+8080\\s+6\\s+12\\.0 MiB\\s+0`));

  // charts with axis titles that carry units, time on x, numeric ticks
  const share = await chartTexts(page, guest, 'share');
  const resp = await chartTexts(page, guest, 'response');
  const off = await chartTexts(page, guest, 'offload');
  for (const [name, texts, title] of [['share', share, 'share (MiB)'], ['response', resp, 'response time (s)'], ['offload', off, 'offload sent (MiB/s)']] as const) {
    assert.ok(texts.includes(title), `${name} chart has y axis title ${title}: ${texts.join('|')}`);
    assert.ok(texts.includes('time'), `${name} chart has x axis title time`);
    assert.ok(texts.some((s) => /^\d\d:\d\d:\d\d$/.test(s)), `${name} chart has time ticks: ${texts.join('|')}`);
    assert.ok(texts.some((s) => /^\d+(\.\d+)?$/.test(s)), `${name} chart has numeric ticks`);
  }
  assert.ok(share.includes('size') && share.includes('used'), 'share legend');
  assert.ok(resp.includes('mean') && resp.includes('p95'), 'response legend');
  assert.ok(off.some((s) => s.startsWith(mod.id)), `offload legend names the module: ${off.join('|')}`);
  assert.ok(Math.max(...share.filter((s) => /^\d+$/.test(s)).map(Number)) >= 15, 'share axis reaches the 16 MiB size');
  // no controller set for this guest yet
  assert.match(await card.locator('.ctl').innerText(), /controller off/);
  // live: resize the share; the row, the chart title and the chart's axis follow without a reload
  await apiRequest(dir, 'PUT', `/v1/guests/${guest}/share`, { size: '48M' });
  await eventually('the guest row shows the new size', rowText, (v) => v.includes('/ 48.0 MiB'), 15_000);
  assert.match(await card.locator('[data-chart="share"] h3').innerText(), /of 48\.0 MiB/);
  await eventually('the share axis grows to the new size', () => chartTexts(page, guest, 'share'), (v) => v.some((s) => Number(s) >= 40), 15_000);
  assert.deepEqual(pageErrors, [], 'no script errors in the page');


  // the controller (hylicsd's loop at its shortest interval): the SLO band and line on the response chart, the
  // decisions marked on both charts and listed, the settings line; tasks keep coming meanwhile
  await apiRequest(dir, 'PUT', `/v1/guests/${guest}/control`, { scheme: 'improved', slo: '2s', min: '8M', max: '64M', intervalMin: '1s', intervalMax: '2s' });
  for (let i = 0; i < 4; i++) {
    const r = await exec([NODE_BIN, ...entryArgv('guest/demo-task'), 'compress', '--share', '/mnt/hylics', '--size', '1M']);
    assert.equal(r.exitCode, 0, r.stderr);
  }
  // tasks that say which tier served them (the in-guest `hylics task run`): the profile's hit ratio is shown
  const tiered = await exec(['sh', '-c', 'for t in hit hit hit miss; do /run/hylics/bin/hylics task run tiered --tier-$t -- true || exit 1; done']);
  assert.equal(tiered.exitCode, 0, tiered.stderr);
  await eventually('the guest card shows the memory-tier hit ratio', () => card.locator('.facts').innerText(), (v) => /memory-tier hit ratio \d+ %/.test(v), 30_000);
  await eventually('the controller line shows scheme and SLO', () => card.locator('.ctl').innerText(), (v) => /controller improved\s+SLO 2\.00 s/.test(v));
  assert.match(await rowText(), /improved · SLO 2\.00 s/);
  await eventually('the response chart draws the SLO', () => chartTexts(page, guest, 'response'), (v) => v.includes('SLO 2.00 s'));
  const rows = await eventually('decisions are listed', () => card.locator('.decisions tbody tr').count(), (n) => n >= 2, 30_000);
  const first = await card.locator('.decisions tbody tr').first().innerText();
  assert.match(first, /^\d\d:\d\d:\d\d\s+(grow|shrink|hold|clamped|refused)\s/, `decision row: ${first}`);
  // decision marks: one rule per decision in each chart (vega draws marks as paths in groups named by role)
  const marks = await page.locator(`section.guest[data-guest="${guest}"] [data-chart="share"] svg g.mark-rule.role-mark > *`).count();
  assert.ok(marks >= rows, `share chart marks ${marks} decisions (the table lists the last ${rows})`);
  assert.deepEqual(pageErrors, [], 'no script errors in the page');

  if (process.env.HYLICS_DASHBOARD_SCREENSHOT) {
    await new Promise((r) => setTimeout(r, 4000)); // a few more polls
    await page.screenshot({ path: process.env.HYLICS_DASHBOARD_SCREENSHOT, fullPage: true });
  }
});
