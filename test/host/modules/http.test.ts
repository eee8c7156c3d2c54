import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { HylicsError } from '../../../src/core/errors/index.js';
import { listModuleRules } from '../../../src/os/nft.js';
import type { ModuleInfo } from '../../../src/host/modules/index.js';
import type { EngineKind } from '../../../src/host/modules/engine-api.js';
import { canRun, curl, makeFixture, sh, TEST_ENGINES, waitFor, type Fixture } from './fixture.js';

const skip = canRun();
// Every guarantee of the http module, once per module engine (nginx, lighttpd): where the engines answer
// differently (status codes of refused paths, ETag form), the expectation says which.
function suite(engine: EngineKind): void {
  let fx: Fixture;
  let mod: ModuleInfo;
  let url: string;
  const big = randomBytes(24 * 1024 * 1024 + 123);
  const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

  before(async () => {
    if (skip) return;
    fx = await makeFixture('http', engine);
    const www = join(fx.share, 'www');
    mkdirSync(join(www, 'sub'), { recursive: true });
    writeFileSync(join(www, 'small.txt'), 'hello from the share\n');
    writeFileSync(join(www, 'big.bin'), big);
    writeFileSync(join(www, 'sub', 'v.m3u8'), '#EXTM3U\n');
    writeFileSync(join(www, 'sub', 'seg.ts'), randomBytes(1000));
    writeFileSync(join(www, 'sub', 'a.m4s'), randomBytes(1000));
    writeFileSync(join(www, 'sub', 'clip.mp4'), randomBytes(1000));
    writeFileSync(join(www, 'with space %.txt'), 'encoded name');
    writeFileSync(join(fx.share, 'outside-root.txt'), 'not under www');
    writeFileSync(join(fx.otherShare, 'secret.txt'), 'OTHER-GUEST-SECRET');
    // hostile guest content
    symlinkSync(join(fx.otherShare, 'secret.txt'), join(www, 'to-other'));
    symlinkSync('/proc/self/environ', join(www, 'to-proc'));
    symlinkSync('/etc/passwd', join(www, 'to-passwd'));
    symlinkSync('..', join(www, 'up'));
    symlinkSync(fx.otherShare, join(www, 'other-dir'));
    execFileSync('mkfifo', [join(www, 'fifo')]);
    execFileSync('mknod', [join(www, 'zero'), 'c', '1', '5']);
    mod = await fx.manager.start(fx.guest, { kind: 'http', root: 'www', port: 80 });
    url = `http://${fx.guest.guestAddr}:80`;
  });

  after(async () => { if (fx) await fx.cleanup(); });

  test('start returns the guest URL and installs the nft steering', { skip }, async () => {
    assert.deepEqual(mod.urls, [`${url}/`]);
    assert.equal(mod.kind, 'http');
    const rules = await listModuleRules(fx.guest.name, fx.manager.owner);
    assert.match(rules, new RegExp(`ip daddr ${fx.guest.guestAddr.replace(/\./g, '\\.')} tcp dport 80 dnat to ${fx.guest.hostAddr.replace(/\./g, '\\.')}:${mod.listen.port}`));
    assert.match(rules, /hook prerouting/);
    assert.match(rules, /hook output/);
    assert.deepEqual(fx.manager.list(fx.guest.name).map((m) => m.id), [mod.id]);
  });

  test('GET from a client netns and from the host: same bytes (sha256), right headers', { skip }, async () => {
    for (const ns of [fx.clientNs, undefined]) {
      const r = await curl(ns, ['-D', '-', '-o', '/dev/null', `${url}/small.txt`]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^HTTP\/1\.1 200 OK/);
      assert.match(r.stdout, /Content-Type: text\/plain; charset=utf-8/i);
      assert.match(r.stdout, /Content-Length: 21/i);
      // nginx: "<mtime>-<size>" in hex; lighttpd: a decimal hash of inode, size and mtime
      assert.match(r.stdout, engine === 'nginx' ? /ETag: "[0-9a-f]+-15"/i : /ETag: "\d+"/i);
      assert.match(r.stdout, /Last-Modified: \w{3}, /i);
      const body = await sh('sh', ['-c', `curl -sS ${url}/big.bin | sha256sum`], ns ? { ns } : {});
      assert.equal(body.stdout.split(' ')[0], sha(big), `big.bin via ${ns ?? 'host'}`);
    }
  });

  test('HEAD sends headers only', { skip }, async () => {
    const r = await curl(fx.clientNs, ['-I', `${url}/big.bin`]);
    assert.match(r.stdout, /^HTTP\/1\.1 200/);
    assert.match(r.stdout, new RegExp(`Content-Length: ${big.length}`, 'i'));
    assert.match(r.stdout, /Accept-Ranges: bytes/i);
  });

  test('single Range: 206 with the exact bytes; suffix and open ranges; 416 beyond the end', { skip }, async () => {
    const cases: Array<[string, number, number]> = [['0-99', 0, 99], ['1000-', 1000, big.length - 1], ['-500', big.length - 500, big.length - 1], [`5-${big.length + 100}`, 5, big.length - 1]];
    for (const [range, s, e] of cases) {
      const out = join(fx.base, 'range.bin');
      const r = await curl(fx.clientNs, ['-D', '-', '-o', out, '-r', range, `${url}/big.bin`]);
      assert.match(r.stdout, /HTTP\/1\.1 206/, range);
      assert.match(r.stdout, new RegExp(`Content-Range: bytes ${s}-${e}/${big.length}`, 'i'), range);
      assert.equal(sha(readFileSync(out)), sha(big.subarray(s, e + 1)), range);
    }
    const bad = await curl(fx.clientNs, ['-D', '-', '-o', '/dev/null', '-r', `${big.length}-`, `${url}/big.bin`]);
    assert.match(bad.stdout, /^HTTP\/1\.1 416/);
    // the length of the file with it (a SHOULD of RFC 9110): nginx sends it, lighttpd does not
    if (engine === 'nginx') assert.match(bad.stdout, new RegExp(`Content-Range: bytes \\*/${big.length}`, 'i'));
    // several ranges: allowed to answer with the whole file (nginx, max_ranges 1) or with one range that covers
    // them (lighttpd coalesces ranges this close)
    const multi = await curl(fx.clientNs, ['-D', '-', '-o', '/dev/null', '-r', '0-1,5-6', `${url}/small.txt`]);
    if (engine === 'nginx') assert.match(multi.stdout, /^HTTP\/1\.1 200/);
    else assert.match(multi.stdout, /^HTTP\/1\.1 206[^]*Content-Range: bytes 0-6\/21/i);
  });

  test('conditional GET: If-None-Match and If-Modified-Since give 304; If-Range with a stale tag gives 200', { skip }, async () => {
    const h = await curl(fx.clientNs, ['-I', `${url}/small.txt`]);
    const etag = /ETag: (".*")/i.exec(h.stdout)![1]!;
    const lm = /Last-Modified: (.*)\r/i.exec(h.stdout)![1]!;
    const a = await curl(fx.clientNs, ['-D', '-', '-o', '/dev/null', '-H', `If-None-Match: ${etag}`, `${url}/small.txt`]);
    assert.match(a.stdout, /^HTTP\/1\.1 304/);
    const b = await curl(fx.clientNs, ['-D', '-', '-o', '/dev/null', '-H', `If-Modified-Since: ${lm}`, `${url}/small.txt`]);
    assert.match(b.stdout, /^HTTP\/1\.1 304/);
    const c = await curl(fx.clientNs, ['-D', '-', '-o', '/dev/null', '-H', 'If-None-Match: "nope"', `${url}/small.txt`]);
    assert.match(c.stdout, /^HTTP\/1\.1 200/);
    const d = await curl(fx.clientNs, ['-D', '-', '-o', '/dev/null', '-r', '0-3', '-H', 'If-Range: "stale"', `${url}/small.txt`]);
    assert.match(d.stdout, /^HTTP\/1\.1 200/);
    const e = await curl(fx.clientNs, ['-D', '-', '-o', '/dev/null', '-r', '0-3', '-H', `If-Range: ${etag}`, `${url}/small.txt`]);
    assert.match(e.stdout, /^HTTP\/1\.1 206/);
  });

  test('keep-alive: several requests (small and sendfile bodies) over one connection', { skip }, async () => {
    const r = await curl(fx.clientNs, ['-v', '-o', '/dev/null', '-o', '/dev/null', '-o', '/dev/null', `${url}/small.txt`, `${url}/big.bin`, `${url}/small.txt`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((r.stderr.match(/Re-using existing connection|Reusing existing/g) ?? []).length, 2, r.stderr);
    assert.equal((r.stderr.match(/Connected to/g) ?? []).length, 1);
  });

  test('Content-Type of video and playlist files', { skip }, async () => {
    const want: Record<string, RegExp> = {
      'sub/v.m3u8': /application\/vnd\.apple\.mpegurl/, 'sub/seg.ts': /video\/mp2t/, 'sub/clip.mp4': /video\/mp4/, 'sub/a.m4s': /video\/iso\.segment/,
    };
    for (const [p, re] of Object.entries(want)) {
      const r = await curl(fx.clientNs, ['-I', `${url}/${p}`]);
      assert.match(r.stdout, re, p);
    }
    const enc = await curl(fx.clientNs, [`${url}/with%20space%20%25.txt`]);
    assert.equal(enc.stdout, 'encoded name');
  });

  test('concurrent downloads are byte-exact', { skip }, async () => {
    const runs = await Promise.all(Array.from({ length: 8 }, (_, i) => sh('sh', ['-c', `curl -sS ${i % 2 ? '' : `-r ${i * 1000}-`} ${url}/big.bin | sha256sum`], { ns: fx.clientNs })));
    runs.forEach((r, i) => assert.equal(r.stdout.split(' ')[0], sha(i % 2 ? big : big.subarray(i * 1000)), `download ${i}`));
  });

  test('hostile share content: nothing outside the share, no hang on FIFOs/devices', { skip }, async () => {
    // codes are nginx's: a `..` that climbs above the root is a malformed request (400), %2F is decoded to a
    // separator (so %2fetc%2fpasswd is etc/passwd inside the root: 404), a directory gets no listing (403, or 301
    // to the same name with a slash); every symlink on the way is refused (disable_symlinks on: 403 for the last
    // component, 404 for a directory component: O_NOFOLLOW|O_DIRECTORY gives ENOTDIR)
    // lighttpd: `..` is clamped at the root (never above it: 404 for what is not in the root), a symlink is refused
    // with 403 or 404 (its target is looked up inside lighttpd's chroot, where the host's paths do not exist)
    const L = engine === 'lighttpd';
    const cases: Array<[string, number]> = [
      ['/to-other', L ? 0 : 403], ['/to-proc', L ? 0 : 403], ['/to-passwd', L ? 0 : 403], ['/up/outside-root.txt', L ? 0 : 404], ['/other-dir/secret.txt', L ? 0 : 404],
      ['/../outside-root.txt', L ? 404 : 400], ['/sub/../../outside-root.txt', L ? 404 : 400], ['/%2e%2e/outside-root.txt', L ? 404 : 400],
      ['/%2E%2E/%2E%2E/etc/passwd', L ? 404 : 400], ['/..%2foutside-root.txt', L ? 404 : 400], ['/%2fetc%2fpasswd', 404], ['//etc/passwd', 404], ['/etc/passwd', 404], ['/small.txt%00.png', 400],
      ['/fifo', 0], ['/zero', 403], ['/', 403], ['/sub', 301], ['/sub/', 403], ['/nope', 404], ['/sub/../small.txt', 200],
    ];
    for (const [p, code] of cases) {
      const r = await curl(fx.clientNs, ['--path-as-is', '-o', '/dev/stdout', '-w', '\n%{http_code}', `${url}${p}`], 10_000);
      const status = Number(r.stdout.trim().split('\n').pop());
      // 0: refused either way (a FIFO is opened non-blocking and is not a regular file: nginx says 403 or 404)
      if (code === 0) assert.ok(status === 403 || status === 404, `${p}: ${r.stdout}`);
      else assert.equal(status, code, `${p}: ${r.stdout}`);
      assert.ok(!r.stdout.includes('OTHER-GUEST-SECRET') && !r.stdout.includes('root:x:0') && !r.stdout.includes('not under www'), p);
    }
  });

  test('a file swapped for a symlink between checks is never followed: not to another share, /usr, the config or logs', { skip }, async () => {
    const www = join(fx.share, 'www');
    writeFileSync(join(www, 'real.txt'), 'REAL');
    writeFileSync(join(www, 'swap'), 'REAL');
    symlinkSync(join(fx.otherShare, 'secret.txt'), join(www, 'evil-link'));
    // what a symlink could name: another guest's share (host path), a host file the engine's namespace mounts (/usr),
    // the engine's own config and access log (paths inside its namespace), a file of the share outside the root
    const targets = [join(fx.otherShare, 'secret.txt'), '/usr/share/common-licenses/GPL-3', '/etc/nginx.conf', '/etc/lighttpd.conf',
      `/log/${mod.id}.access`, '../outside-root.txt'];
    let stop = false;
    const flipper = (async () => {
      // a guest flipping the name between a regular file and a symlink, as fast as it can
      let i = 0;
      while (!stop) {
        try {
          if (i++ % 2) { rmSync(join(www, 'swap'), { force: true }); symlinkSync(targets[(i >> 1) % targets.length]!, join(www, 'swap')); }
          else { writeFileSync(join(www, 'swap.tmp'), 'REAL'); renameSync(join(www, 'swap.tmp'), join(www, 'swap')); }
        } catch { /* racing ourselves is fine */ }
        if (i % 50 === 0) await new Promise((r) => setImmediate(r));
      }
    })();
    const seen = new Set<string>();
    for (let k = 0; k < 10; k++) {
      // each answer as "<status> <its first 64 bytes, one line>"
      const r = await sh('sh', ['-c', `F=$(mktemp); for i in $(seq 40); do c=$(curl -sS -o "$F" -w '%{http_code}' ${url}/swap); printf '%s %s\\n' "$c" "$(head -c 64 "$F" | tr -d '\\r\\n')"; done; rm -f "$F"`], { ns: fx.clientNs });
      for (const line of r.stdout.split('\n').filter(Boolean)) seen.add(line.trim());
    }
    stop = true;
    await flipper;
    for (const s of seen) {
      const [status] = s.split(' ');
      if (status === '200') assert.equal(s, '200 REAL', 'a 200 carries the regular file only');
      else assert.ok(status === '403' || status === '404', `unexpected answer ${JSON.stringify(s)}`);
      assert.ok(!/SECRET|GNU GENERAL|generated by hylicsd|not under www/.test(s), s);
    }
    assert.ok(seen.has('200 REAL'));
  });

  test('bad requests get 4xx: method, header size, garbage', { skip }, async () => {
    const post = await curl(fx.clientNs, ['-o', '/dev/null', '-w', '%{http_code}', '-X', 'POST', `${url}/small.txt`]);
    // nginx: 405; lighttpd: 411 for a POST without a length, 403 for any method but GET and HEAD
    assert.equal(post.stdout, engine === 'nginx' ? '405' : '411');
    const put = await curl(fx.clientNs, ['-o', '/dev/null', '-w', '%{http_code}', '-X', 'PUT', '-d', 'x', `${url}/small.txt`]);
    assert.equal(put.stdout, engine === 'nginx' ? '405' : '403');
    const postBody = await curl(fx.clientNs, ['-o', '/dev/null', '-w', '%{http_code}', '-d', 'x', `${url}/small.txt`]);
    assert.equal(postBody.stdout, engine === 'nginx' ? '405' : '403');
    const huge = await curl(fx.clientNs, ['-o', '/dev/null', '-w', '%{http_code}', '-H', `X-Big: ${'a'.repeat(20000)}`, `${url}/small.txt`]);
    // nginx: 400 "Request Header Or Cookie Too Large"; lighttpd: 431
    assert.equal(huge.stdout, engine === 'nginx' ? '400' : '431');
    const raw = await new Promise<string>((resolve, reject) => {
      const s = connect(mod.listen.port, mod.listen.addr);
      let got = '';
      s.on('data', (d) => { got += d.toString(); });
      s.on('end', () => resolve(got));
      s.on('error', reject);
      s.write('GARBAGE\r\n\r\n');
    });
    assert.match(raw, /^HTTP\/1\.[01] 400/); // lighttpd answers a request line it cannot parse as HTTP/1.0
    const abs = await new Promise<string>((resolve, reject) => {
      const s = connect(mod.listen.port, mod.listen.addr);
      let got = '';
      s.on('data', (d) => { got += d.toString(); s.end(); });
      s.on('close', () => resolve(got));
      s.on('error', reject);
      s.write('GET http://evil/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n');
    });
    // absolute-form is legal HTTP/1.1: the path is taken inside the module root, never the host's /etc
    // (lighttpd refuses it, 400: the authority and the Host header differ)
    assert.match(abs, engine === 'nginx' ? /^HTTP\/1\.1 404/ : /^HTTP\/1\.1 400/);
    assert.ok(!abs.includes('root:x:0'));
  });

  test('guests are isolated: no access to, nor control of, another guest\'s modules; ports are per guest address', { skip }, async () => {
    writeFileSync(join(fx.otherShare, 'b.txt'), 'guest B content');
    const b = await fx.manager.start(fx.guestB, { kind: 'http', root: '/', port: 80 });
    try {
      assert.deepEqual(fx.manager.list(fx.guestB.name).map((m) => m.id), [b.id]);
      assert.ok(!fx.manager.list(fx.guestB.name).some((m) => m.id === mod.id && m.guest === fx.guest.name));
      // the same id under the other guest's name is not the same module
      await assert.rejects(fx.manager.stop(fx.guestB.name, mod.id === b.id ? 'http-999' : mod.id), (e: unknown) => e instanceof HylicsError && e.code === 'HYLICS_ERR_MODULE_NOT_FOUND');
      await assert.rejects(fx.manager.stop('nobody-here', mod.id), (e: unknown) => e instanceof HylicsError && e.code === 'HYLICS_ERR_MODULE_NOT_FOUND');
      // each guest's port 80 serves its own share only
      assert.equal((await curl(fx.clientNs, [`http://${fx.guestB.guestAddr}/b.txt`])).stdout, 'guest B content');
      assert.equal((await curl(fx.clientNs, ['-o', '/dev/null', '-w', '%{http_code}', `http://${fx.guestB.guestAddr}/www/small.txt`])).stdout, '404');
      assert.equal((await curl(fx.clientNs, ['-o', '/dev/null', '-w', '%{http_code}', `${url}/b.txt`])).stdout, '404');
      // rules name only the guest's own address
      assert.ok(!(await listModuleRules(fx.guestB.name, fx.manager.owner)).includes(fx.guest.guestAddr));
      await assert.rejects(fx.manager.start(fx.guest, { kind: 'http', root: 'www', port: 80 }), (e: unknown) => e instanceof HylicsError && e.code === 'HYLICS_ERR_MODULE_PORT_IN_USE');
    } finally {
      await fx.manager.stopAll(fx.guestB.name);
    }
    assert.equal(await listModuleRules(fx.guestB.name, fx.manager.owner), '');
  });

  // (this test ran on nginx in both suites while nginx was the default; lighttpd does not close an idle connection to
  // make room for a new client: it holds its slot until the header timeout, and its per-module cap has its own test)
  test('connection limit: the engine never holds more than maxConnections client connections, idle ones give way', { skip: skip || (engine !== 'nginx' && 'nginx behaviour: lighttpd keeps idle connections until the header timeout; its per-module cap: lighttpd-engine.test.ts') }, async () => {
    const { ModuleManager } = await import('../../../src/host/modules/index.js');
    const m2 = new ModuleManager({ engine: 'nginx', limits: { maxConnections: 2 } });
    writeFileSync(join(fx.otherShare, 'lim.txt'), 'limited');
    const sockets: import('node:net').Socket[] = [];
    try {
      const info = await m2.start(fx.guestB, { kind: 'http', root: '/', port: 83 });
      let open = 0;
      for (let i = 0; i < 10; i++) {
        await new Promise<void>((resolve) => {
          const s = connect(info.listen.port, info.listen.addr, () => {
            open++;
            resolve();
          });
          s.on('error', () => resolve());
          s.once('close', () => {
            open--;
          });
          sockets.push(s);
        });
      }
      // nginx closes connections beyond its slots at once, and gives idle (request-less) ones up for new clients
      await waitFor('at most 2 open', () => open <= 2, 5000);
      const r = await curl(
        fx.clientNs,
        ['-o', '/dev/null', '-w', '%{http_code}', `http://${fx.guestB.guestAddr}:83/lim.txt`],
        5000,
      );
      assert.equal(r.stdout, '200', 'a real client still gets through');
      const st = await m2.engineReport(fx.guestB.name);
      // + the status request itself
      assert.ok(st.connections && st.connections.active <= 2 + 1, JSON.stringify(st.connections));
    } finally {
      for (const s of sockets) s.destroy();
      await m2.close();
    }
  });

  test('module roots must be directories inside the share', { skip }, async () => {
    for (const root of ['../other', 'www/../..', 'www/up', 'www/small.txt', 'missing', 'www/other-dir']) {
      await assert.rejects(fx.manager.start(fx.guest, { kind: 'http', root, port: 8081 }), (e: unknown) => e instanceof HylicsError && e.code === 'HYLICS_ERR_MODULE_ROOT', root);
    }
    await assert.rejects(fx.manager.start(fx.guest, { kind: 'ftp' as 'http', root: 'www', port: 8081 }), (e: unknown) => e instanceof HylicsError && e.code === 'HYLICS_ERR_MODULE_KIND');
    await assert.rejects(fx.manager.start(fx.guest, { kind: 'http', root: 'www', port: 8081, hostPort: 80 }), (e: unknown) => e instanceof HylicsError && e.code === 'HYLICS_ERR_INVALID_ARGUMENT');
    const unreadable = join(fx.share, 'www', 'private.txt');
    writeFileSync(unreadable, 'root only');
    chmodSync(unreadable, 0o600);
    const r = await curl(fx.clientNs, ['-o', '/dev/null', '-w', '%{http_code}', `${url}/private.txt`]);
    assert.equal(r.stdout, '403', 'the worker is unprivileged');
  });

  test('stream modules need the nginx engine: refused on lighttpd with a stable code, nothing started', { skip: skip || (engine !== 'lighttpd' && 'a lighttpd-engine refusal; nginx serves stream modules (stream.test.ts)') }, async () => {
    const before = fx.manager.list(fx.guest.name).map((m) => m.id);
    await assert.rejects(fx.manager.start(fx.guest, { kind: 'stream', root: 'www', port: 8084 }), (e: unknown) => e instanceof HylicsError && e.code === 'HYLICS_ERR_MODULE_ENGINE');
    assert.deepEqual(fx.manager.list(fx.guest.name).map((m) => m.id), before);
    assert.equal((await curl(fx.clientNs, ['-o', '/dev/null', '-w', '%{http_code}', `${url}/small.txt`])).stdout, '200');
  });

  test('optional host port', { skip }, async () => {
    const hostPort = 20000 + (process.pid % 20000);
    const m = await fx.manager.start(fx.guest, { kind: 'http', root: 'www', port: 8082, hostPort });
    try {
      assert.equal((await curl(undefined, [`http://127.0.0.1:${hostPort}/small.txt`])).stdout, 'hello from the share\n');
      assert.equal((await curl(fx.clientNs, [`http://${fx.guest.guestAddr}:8082/small.txt`])).stdout, 'hello from the share\n');
    } finally {
      await fx.manager.stop(fx.guest.name, m.id);
    }
  });

  test('events and metrics report requests, bytes, errors, latency', { skip }, async () => {
    await waitFor('a stats event', () => fx.events.some((e) => e.type === 'stats' && e.id === mod.id && e.bytes > 0), 5000);
    const stats = fx.events.filter((e) => e.type === 'stats' && e.id === mod.id);
    const bytes = stats.reduce((a, e) => a + (e.type === 'stats' ? e.bytes : 0), 0);
    assert.ok(bytes >= big.length * 4, `bytes ${bytes}`);
    assert.ok(stats.some((e) => e.type === 'stats' && e.errors > 0 && e.latency.p99Ms > 0));
    const metrics = await fx.manager.registry.metrics();
    assert.match(metrics, new RegExp(`hylics_module_bytes_sent_total\\{guest="${fx.guest.name}",module="${mod.id}",kind="http"\\} \\d+`));
    assert.match(metrics, /hylics_module_requests_total/);
    assert.match(metrics, /hylics_module_errors_total/);
    // hylicsd's own cost of these counters (reading the access log), which bench http-delivery adds to the module's
    assert.ok(fx.manager.accessLogCpuSeconds(fx.guest.name) > 0, 'CPU spent reading the access log is accounted');
    assert.equal(fx.manager.accessLogCpuSeconds('no-such-guest'), 0);
  });

  test('a worker killed mid-download is restarted, the guest told, and the download resumes byte-exact', { skip }, async () => {
    const pid = fx.manager.workerPid(fx.guest.name)!;
    assert.ok(pid > 0);
    assert.equal(readFileSync(`/proc/${pid}/status`, 'utf8').match(/^Uid:\s+(\d+)/m)![1], '65534', 'worker runs as nobody');
    const out = join(fx.base, 'partial.bin');
    const dl = sh('curl', ['-sS', '--limit-rate', '2M', '-o', out, `${url}/big.bin`], { ns: fx.clientNs, timeoutMs: 60_000 });
    await waitFor('download under way', () => { try { return readFileSync(out).length > 1024 * 1024; } catch { return false; } });
    process.kill(pid, 'SIGKILL');
    const first = await dl;
    assert.notEqual(first.code, 0, 'the interrupted download fails, it is not passed off as complete');
    await waitFor('worker-restarted event', () => fx.events.some((e) => e.type === 'worker-restarted' && e.guest === fx.guest.name));
    await waitFor('module back', async () => (await curl(fx.clientNs, ['-o', '/dev/null', '-w', '%{http_code}', `${url}/small.txt`], 3000)).stdout === '200');
    assert.notEqual(fx.manager.workerPid(fx.guest.name), pid);
    const resumed = await sh('curl', ['-sS', '-C', '-', '-o', out, `${url}/big.bin`], { ns: fx.clientNs });
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.equal(sha(readFileSync(out)), sha(big));
  });

  test('stop removes the rule and the worker', { skip }, async () => {
    const pid = fx.manager.workerPid(fx.guest.name)!;
    await fx.manager.stop(fx.guest.name, mod.id);
    assert.deepEqual(fx.manager.list(fx.guest.name), []);
    assert.equal(await listModuleRules(fx.guest.name, fx.manager.owner), '');
    await waitFor('worker gone', () => { try { process.kill(pid, 0); return false; } catch { return true; } });
    const r = await curl(fx.clientNs, ['-o', '/dev/null', '-w', '%{http_code}', `${url}/small.txt`], 3000);
    assert.notEqual(r.stdout, '200');
  });
}

for (const engine of TEST_ENGINES) describe(`http module (${engine} engine)`, () => suite(engine));
