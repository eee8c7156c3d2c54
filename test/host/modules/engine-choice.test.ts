// module-engine auto by traffic (engine-choice.ts): a guest whose http modules serve mostly large responses moves from
// lighttpd to nginx, and back once its responses are small again, no sooner than the dwell time after the last
// switch; no decision without enough evidence; `module-engine: lighttpd` never moves. The choice itself is checked
// with an injected clock; the switches with real engines and real HTTP through the guest's address (root), with
// small injected thresholds, window and dwell (the defaults would take minutes).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ModuleManager, type EngineChoiceOptions } from '../../../src/host/modules/index.js';
import { DEFAULT_ENGINE_CHOICE, EngineChoice, engineChoiceOptions } from '../../../src/host/modules/engine-choice.js';
import { findNginx } from '../../../src/host/modules/engine.js';
import { findLighttpd } from '../../../src/host/modules/lighttpd-engine.js';
import { canRun, curl, makeFixture, waitFor, type Fixture } from './fixture.js';

const KiB = 1024;
/** The tests' thresholds (not the defaults, checked apart below): 1 MiB responses are large, 4 KiB ones small. */
const THRESHOLDS: Partial<EngineChoiceOptions> = { toNginxMeanBytes: 256 * KiB, toLighttpdMeanBytes: 64 * KiB };
const opts = (o: Partial<EngineChoiceOptions>): EngineChoiceOptions =>
  engineChoiceOptions({ ...THRESHOLDS, ...o });

describe('EngineChoice (the decision, injected clock)', () => {
  test('lighttpd until the window holds enough large responses; back below the lower threshold only', () => {
    const c = new EngineChoice(opts({ windowMs: 60_000, minRequests: 10, minEvidenceMs: 5_000 }), 0);
    assert.equal(c.preferred, 'lighttpd');
    c.record(1_000, 20, 20 * 1024 * KiB);
    assert.equal(c.next(1_000), undefined, 'watched 1 s: not enough evidence yet');
    assert.equal(c.traffic(1_000).evidence, false);
    const n = c.next(6_000);
    assert.equal(n?.kind, 'nginx');
    assert.match(n!.reason, /^mean response 1\.0 MiB over 20 requests in the last 1 min/);
    c.adopt(n!);
    // a mean of 106 KiB: between the thresholds, stays on nginx (hysteresis)
    c.record(7_000, 180, 180 * 4 * KiB);
    const mean = c.traffic(7_000).meanBytes;
    assert.ok(mean > 64 * KiB && mean < 256 * KiB, String(mean));
    assert.equal(c.next(7_000), undefined);
    // the large responses leave the window; small ones stay: back to lighttpd
    c.record(62_000, 100, 100 * 4 * KiB);
    c.record(120_000, 100, 100 * 4 * KiB);
    const back = c.next(120_000);
    assert.equal(back?.kind, 'lighttpd');
    assert.match(back!.reason, /mean response 4\.0 KiB over \d+ requests .*< 64\.0 KiB/);
    c.adopt(back!);
    assert.equal(c.preferred, 'lighttpd');
    c.revert();
    assert.equal(c.preferred, 'nginx', 'revert: the preference before the last adopt');
  });

  test('too few requests in the window is no evidence, however large', () => {
    const c = new EngineChoice(opts({ minRequests: 64, minEvidenceMs: 0 }), 0);
    c.record(1_000, 63, 63 * 200 * 1024 * KiB);
    assert.equal(c.next(1_000), undefined);
    assert.equal(c.traffic(1_000).wants, 'lighttpd');
    c.record(2_000, 1, 200 * 1024 * KiB);
    assert.equal(c.next(2_000)?.kind, 'nginx');
    // all of it expires with the window: no evidence again
    assert.equal(c.traffic(2_000 + DEFAULT_ENGINE_CHOICE.windowMs + 20_000).requests, 0);
  });

  test('options: defaults as named, thresholds the wrong way round refused', () => {
    assert.deepEqual(engineChoiceOptions(), DEFAULT_ENGINE_CHOICE);
    assert.equal(DEFAULT_ENGINE_CHOICE.toNginxMeanBytes, 4096 * KiB);
    assert.equal(DEFAULT_ENGINE_CHOICE.toLighttpdMeanBytes, 512 * KiB);
    assert.throws(() => engineChoiceOptions({ toNginxMeanBytes: 1, toLighttpdMeanBytes: 2 }), /HYLICS_ERR_INVALID_ARGUMENT|toLighttpdMeanBytes/);
    assert.throws(() => engineChoiceOptions({ windowMs: 0 }));
  });
});

const skip = canRun() || (!findLighttpd() && 'needs lighttpd (Debian package lighttpd)') || (!findNginx() && 'needs nginx');
/** Small values so that a test sees switches in seconds (defaults: DEFAULT_ENGINE_CHOICE). */
const FAST: Partial<EngineChoiceOptions> = {
  ...THRESHOLDS, windowMs: 8_000, minRequests: 8, minEvidenceMs: 0, dwellMs: 6_000,
};
const BIG = 1024 * KiB + 17;

describe('module-engine auto by traffic: real engines', () => {
  let fx: Fixture;
  let big: Buffer;
  before(async () => {
    if (skip) return;
    fx = await makeFixture('aeng');
    big = randomBytes(BIG);
    writeFileSync(join(fx.share, 'big.bin'), big);
    writeFileSync(join(fx.share, 'small.txt'), 'small\n');
  });
  after(async () => { if (fx) await fx.cleanup(); });

  /** n GETs of `path` in one curl through the guest's address and port; each must be a 200. */
  const fetchN = async (port: number, path: string, n: number): Promise<void> => {
    const url = `http://${fx.guest.guestAddr}:${port}${path}`;
    const r = await curl(fx.clientNs, ['-w', '%{http_code}\n', ...Array<string>(n).fill(url).flatMap((u) => ['-o', '/dev/null', u])]);
    // a switch may cut a transfer (the client sees a short body and curl an error): the others must be 200s
    for (const code of r.stdout.trim().split('\n')) assert.ok(code === '200' || r.code !== 0, `${code}: ${r.stderr}`);
  };
  /** The engine reported the new server before it listens (it starts in the guest's queue): wait for an answer. */
  const answers = (port: number): Promise<void> => waitFor('the new engine answers', async () =>
    (await curl(fx.clientNs, [`http://${fx.guest.guestAddr}:${port}/small.txt`], 5000)).stdout === 'small\n', 30_000);
  const manager = (tag: string, o: { engine?: 'lighttpd'; choice: Partial<EngineChoiceOptions> }): ModuleManager =>
    new ModuleManager({ runDir: join(fx.base, `run-${tag}`), log: (s) => logs.push(s), ...(o.engine ? { engine: o.engine } : {}), engineChoice: o.choice });
  const logs: string[] = [];
  const switches = async (m: ModuleManager): Promise<Array<{ labels: Record<string, unknown>; value: number }>> =>
    (await m.registry.getSingleMetric('hylics_module_engine_switches_total')!.get()).values.map((v) => ({ labels: v.labels, value: v.value }));

  test('large responses move the guest to nginx on the same address and port, counters kept; small ones back after the dwell', { skip, timeout: 180_000 }, async () => {
    const m = manager('up', { choice: FAST });
    try {
      const mod = await m.start(fx.guest, { kind: 'http', root: '/', port: 80 });
      assert.equal(m.engineOf(fx.guest.name), 'lighttpd');
      assert.equal(mod.engine?.kind, 'lighttpd');
      assert.match(mod.engine!.reason, /no traffic evidence yet/);
      let sent = 0;
      await waitFor('the switch to nginx', async () => {
        if (m.engineOf(fx.guest.name) === 'nginx') return true;
        await fetchN(80, '/big.bin', 4);
        sent += 4;
        return false;
      }, 90_000);
      await answers(80);
      const info = m.list(fx.guest.name)[0]!;
      assert.equal(info.listen.addr, mod.listen.addr);
      assert.equal(info.listen.port, mod.listen.port, 'the same listen port (the nft rule unchanged)');
      assert.equal(info.engine!.kind, 'nginx');
      assert.equal(info.engine!.switches, 1);
      assert.match(info.engine!.reason, /^mean response 1\.0 MiB over \d+ requests in the last 8 s/);
      assert.ok(logs.some((l) => /module engine of .*: switching from lighttpd to nginx: mean response 1\.0 MiB over \d+ requests/.test(l)), logs.join('\n'));
      // the counters were kept: what lighttpd served before the switch (its log read to the end) plus nothing lost
      assert.ok(info.totals.requests >= FAST.minRequests!, JSON.stringify(info.totals));
      assert.ok(info.totals.requests <= sent, `${info.totals.requests} <= ${sent}`);
      // nginx serves the same bytes on the guest's address and port
      const out = join(fx.base, 'got.bin');
      const r = await curl(fx.clientNs, ['-o', out, '-w', '%{http_code}', `http://${fx.guest.guestAddr}:80/big.bin`]);
      assert.equal(r.stdout, '200', r.stderr);
      assert.ok(readFileSync(out).equals(big), 'byte-exact after the switch');
      const before = m.list(fx.guest.name)[0]!.totals.requests;
      await waitFor('nginx counts too', () => m.list(fx.guest.name)[0]!.totals.requests > before, 30_000);
      assert.deepEqual(await switches(m), [{ labels: { guest: fx.guest.name, from: 'lighttpd', to: 'nginx' }, value: 1 }]);

      // small responses: back to lighttpd once the large ones left the window, and not before the dwell time
      await waitFor('the switch back to lighttpd', async () => {
        if (m.engineOf(fx.guest.name) === 'lighttpd') return true;
        await fetchN(80, '/small.txt', 20);
        await new Promise((res) => setTimeout(res, 200));
        return false;
      }, 90_000);
      await answers(80);
      const back = m.list(fx.guest.name)[0]!.engine!;
      assert.equal(back.switches, 2);
      // the dwell time: no second switch sooner than FAST.dwellMs after the first (a bound the code keeps)
      assert.ok(Date.parse(back.switchedAt!) - Date.parse(info.engine!.switchedAt!) >= FAST.dwellMs!, `${info.engine!.switchedAt} -> ${back.switchedAt}`);
      assert.match(back.reason, /^mean response [\d.]+ (B|KiB) over \d+ requests .*< 64\.0 KiB/);
      assert.equal(m.list(fx.guest.name)[0]!.listen.port, mod.listen.port);
      assert.equal((await curl(fx.clientNs, [`http://${fx.guest.guestAddr}:80/small.txt`])).stdout, 'small\n');
      const up = logs.findIndex((l) => /switching from lighttpd to nginx/.test(l));
      assert.ok(up >= 0 && logs.slice(up).some((l) => /switching from nginx to lighttpd: mean response/.test(l)));
      const vals = await switches(m);
      assert.equal(vals.find((v) => v.labels.to === 'lighttpd')?.value, 1);
    } finally {
      await m.close();
    }
  });

  test('the choice outlives the module: a module restarted after the switch starts on nginx at once', { skip, timeout: 180_000 }, async () => {
    const m = manager('keep', { choice: { ...FAST, dwellMs: 600_000 } });
    try {
      const a = await m.start(fx.guest, { kind: 'http', root: '/', port: 80 });
      await waitFor('the switch to nginx', async () => {
        if (m.engineOf(fx.guest.name) === 'nginx') return true;
        await fetchN(80, '/big.bin', 4);
        return false;
      }, 90_000);
      await m.stop(fx.guest.name, a.id);
      assert.equal(m.engineOf(fx.guest.name), undefined, 'no module, no engine');
      assert.equal(m.engineInfo(fx.guest.name)?.switches, 1);
      const b = await m.start(fx.guest, { kind: 'http', root: '/', port: 80 });
      assert.equal(m.engineOf(fx.guest.name), 'nginx', 'started on the server its traffic called for');
      assert.equal(b.engine!.switches, 1, 'no switch to get there');
      assert.match(b.engine!.reason, /^mean response/);
      assert.equal((await curl(fx.clientNs, [`http://${fx.guest.guestAddr}:80/small.txt`])).stdout, 'small\n');
    } finally {
      await m.close();
    }
  });

  /** Serve `n` large responses and wait until they are counted and a further decision tick has passed. */
  const serveCounted = async (m: ModuleManager, n: number): Promise<void> => {
    await fetchN(80, '/big.bin', n);
    // lighttpd writes its log every 4 s (8 s when it misses a write): a cap
    await waitFor('counted', () => m.list(fx.guest.name)[0]!.totals.requests >= n, 30_000);
    await new Promise((res) => setTimeout(res, 2500)); // two decision ticks (once a second) after the count
  };

  test('no switch without enough evidence', { skip, timeout: 120_000 }, async () => {
    const m = manager('few', { choice: { ...FAST, minRequests: 1000 } });
    try {
      await m.start(fx.guest, { kind: 'http', root: '/', port: 80 });
      await serveCounted(m, 20);
      assert.equal(m.engineOf(fx.guest.name), 'lighttpd');
      const e = m.engineInfo(fx.guest.name)!;
      assert.equal(e.switches, 0);
      assert.equal(e.traffic!.evidence, false);
      assert.ok(e.traffic!.meanBytes >= 1024 * KiB, JSON.stringify(e.traffic));
      assert.equal(e.traffic!.settled, false);
    } finally {
      await m.close();
    }
  });

  test('a stream module\'s responses do not count: its guest goes back to lighttpd when it stops', { skip, timeout: 120_000 }, async () => {
    const m = manager('stream', { choice: FAST });
    try {
      const h = await m.start(fx.guest, { kind: 'http', root: '/', port: 80 });
      const st = await m.start(fx.guest, { kind: 'stream', root: '/', port: 81 });
      assert.equal(m.engineOf(fx.guest.name), 'nginx');
      await fetchN(81, '/big.bin', 20);
      await waitFor('counted', () => m.list(fx.guest.name).find((x) => x.id === st.id)!.totals.requests >= 20, 30_000);
      await new Promise((res) => setTimeout(res, 2500)); // two decision ticks after the count
      const e = m.engineInfo(fx.guest.name)!;
      assert.equal(e.traffic!.requests, 0, 'the stream module\'s 20 large responses are not in the window');
      assert.equal(e.traffic!.wants, 'lighttpd');
      await m.stop(fx.guest.name, st.id);
      assert.equal(m.engineOf(fx.guest.name), 'lighttpd');
      assert.match(m.engineInfo(fx.guest.name)!.reason, /no traffic evidence yet/);
      await answers(h.port);
    } finally {
      await m.close();
    }
  });

  test('module-engine: lighttpd never switches, whatever the traffic', { skip, timeout: 120_000 }, async () => {
    const m = manager('fixed', { engine: 'lighttpd', choice: FAST });
    try {
      await m.start(fx.guest, { kind: 'http', root: '/', port: 80 });
      await serveCounted(m, 20);
      assert.equal(m.engineOf(fx.guest.name), 'lighttpd');
      const e = m.engineInfo(fx.guest.name)!;
      assert.equal(e.switches, 0);
      assert.equal(e.traffic, undefined, 'no traffic choice under a fixed setting');
      assert.match(e.reason, /module-engine: lighttpd/);
      assert.deepEqual(await switches(m), []);
    } finally {
      await m.close();
    }
  });
});
