// The HTTP API's TCP listener (--listen) is not an open root shell: bearer token, Host allow-list, JSON-only
// bodies. Issue #12 item 1 reproduced as uid 65534 (nobody) against a real daemon with a real sandbox guest.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, rm, stat, symlink, writeFile, chmod } from 'node:fs/promises';
import { request } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { pino } from 'pino';
import { NODE_BIN, entryArgv } from '../../src/os/self.js';
import { buildApi } from '../../src/host/http.js';
import { DaemonMetrics } from '../../src/host/metrics.js';
import { ensureApiToken, hostAllowed } from '../../src/host/api-auth.js';
import { errorCode, hylics, startDaemon, stopDaemon, tempStateDir } from '../helpers/cli.js';

const NOT_ROOT = process.getuid?.() !== 0 ? 'needs root (daemon, tmpfs mounts, namespaces, setuid to 65534)' : false;
const NOBODY = 65534;

interface Reply { status: number; body: string; headers: Record<string, string | string[] | undefined> }

function call(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        headers: { ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}), ...headers },
      },
      (res) => {
        let b = '';
        res.on('data', (c: Buffer) => {
          b += c.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b, headers: res.headers }));
      },
    );
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

const code = (r: Reply): string | undefined => (JSON.parse(r.body) as { error?: { code: string } }).error?.code;

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** An HTTP request made by another process running as `uid` (what a local unprivileged user can do). */
function callAs(
  uid: number,
  port: number,
  method: string,
  path: string,
  body: unknown,
): Promise<{ status: number; text: string }> {
  const script = `fetch(${JSON.stringify(`http://127.0.0.1:${port}${path}`)}, { method: ${JSON.stringify(method)}, headers: { 'content-type': 'application/json' }, body: ${JSON.stringify(JSON.stringify(body))} })
    .then(async (r) => process.stdout.write(JSON.stringify({ status: r.status, text: await r.text() })), (e) => { process.stderr.write(String(e)); process.exit(3); });`;
  return new Promise((resolve, reject) => {
    const p: ChildProcess = spawn(NODE_BIN, ['-e', script], {
      uid,
      gid: uid,
      cwd: '/',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    p.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
    });
    p.stderr!.on('data', (c: Buffer) => {
      err += c.toString();
    });
    p.on('error', reject);
    p.on('close', (c) =>
      c === 0
        ? resolve(JSON.parse(out) as { status: number; text: string })
        : reject(new Error(`client as uid ${uid} exited ${c}: ${err}`)),
    );
  });
}

test('Host allow-list: IP literals, localhost and listed names pass; other names (DNS rebinding) do not', () => {
  const names = new Set(['hylics.example']);
  for (const h of ['127.0.0.1:7070', '127.0.0.1', '[::1]:7070', 'localhost:7070', 'LOCALHOST', 'hylics.example:7070', '10.0.0.5']) assert.ok(hostAllowed(h, names), h);
  for (const h of [undefined, '', 'evil.example:7070', 'evil.example', '127.0.0.1.evil.example', 'localhost.evil.example', '[zz]:1', 'a b', 'hylics.example.evil:1']) assert.ok(!hostAllowed(h, names), String(h));
});

test('API token file: made 0600, kept across starts, rotated on demand, never read through a symlink', { skip: NOT_ROOT }, async () => {
  const dir = await tempStateDir('hylics-token-');
  try {
    const t1 = await ensureApiToken(dir);
    assert.match(t1, /^[A-Za-z0-9_-]{43}$/);
    const st = await stat(join(dir, 'api-token'));
    assert.equal(st.mode & 0o777, 0o600);
    assert.equal(await ensureApiToken(dir), t1, 'kept');
    await chmod(join(dir, 'api-token'), 0o644);
    assert.equal(await ensureApiToken(dir), t1);
    assert.equal((await stat(join(dir, 'api-token'))).mode & 0o777, 0o600, 'mode put back');
    const t2 = await ensureApiToken(dir, { rotate: true });
    assert.notEqual(t2, t1);
    assert.equal((await readFile(join(dir, 'api-token'), 'utf8')).trim(), t2);
    // a planted symlink (to a file the attacker knows) is refused, not trusted
    await writeFile(join(dir, 'known'), 'A'.repeat(43));
    await rm(join(dir, 'api-token'));
    await symlink(join(dir, 'known'), join(dir, 'api-token'));
    await assert.rejects(ensureApiToken(dir), /symlink/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('TCP listener: no/wrong token 401, bad Host 421, text/plain body 415, JSON with the token passes', async () => {
  const calls: unknown[] = [];
  const token = 'x'.repeat(43);
  const app = await buildApi({
    execute: async (cmd) => { calls.push(cmd); return cmd.op === 'guest.list' ? [] : { exitCode: 0, signal: null, stdout: 'root', stderr: '' }; },
    metrics: new DaemonMetrics({ guestsSnapshot: async () => [] }),
  }, pino({ level: 'silent' }), { auth: { token, allowedHosts: ['hylics.test'] } });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as AddressInfo).port;
  try {
    const good = { authorization: `Bearer ${token}` };
    const exec = JSON.stringify({ argv: ['id'] });
    const json = { 'content-type': 'application/json' };
    let r = await call(port, 'POST', '/v1/guests/g/exec', json, exec);
    assert.equal(r.status, 401);
    assert.equal(code(r), 'HYLICS_ERR_API_UNAUTHORIZED');
    assert.match(String(r.headers['www-authenticate']), /^Bearer/);
    r = await call(port, 'POST', '/v1/guests/g/exec', { ...json, authorization: `Bearer ${'y'.repeat(43)}` }, exec);
    assert.equal(r.status, 401);
    r = await call(port, 'POST', '/v1/guests/g/exec', { ...json, authorization: token }, exec); // no scheme
    assert.equal(r.status, 401);
    for (const path of ['/metrics', '/openapi.json', '/v1/status', '/v1/nonexistent']) assert.equal((await call(port, 'GET', path)).status, 401, path);
    // DNS rebinding: a page at evil.example whose name now resolves to 127.0.0.1; even with the token
    r = await call(port, 'POST', '/v1/guests/g/exec', { ...json, ...good, host: `evil.example:${port}` }, exec);
    assert.equal(r.status, 421);
    assert.equal(code(r), 'HYLICS_ERR_API_HOST_DENIED');
    // a cross-site "simple" POST (text/plain) carrying JSON text
    r = await call(port, 'POST', '/v1/guests/g/exec', { ...good, 'content-type': 'text/plain' }, exec);
    assert.equal(r.status, 415);
    assert.equal(code(r), 'HYLICS_ERR_API_MEDIA_TYPE');
    r = await call(port, 'POST', '/v1/guests/g/exec', { ...good, 'content-type': 'application/x-www-form-urlencoded' }, 'argv=id');
    assert.equal(r.status, 415);
    assert.equal(calls.length, 0, 'nothing refused reached the daemon');
    r = await call(port, 'POST', '/v1/guests/g/exec', { ...json, ...good, host: `hylics.test:${port}` }, exec);
    assert.equal(r.status, 200, r.body);
    r = await call(port, 'GET', '/v1/guests', { ...good, host: `localhost:${port}` });
    assert.equal(r.status, 200);
    assert.equal(calls.length, 2);
    // the dashboard shell is public (no data in it), still behind the Host check
    assert.equal((await call(port, 'GET', '/')).status, 200);
    assert.equal((await call(port, 'GET', '/', { host: 'evil.example' })).status, 421);
  } finally {
    await app.close();
  }
});

test('JSON-only bodies on the Unix socket API too (no auth there: the socket is root-only)', async () => {
  const app = await buildApi({ execute: async () => ({}), metrics: new DaemonMetrics({ guestsSnapshot: async () => [] }) }, pino({ level: 'silent' }));
  try {
    const r = await app.inject({ method: 'POST', url: '/v1/guests/g/exec', headers: { 'content-type': 'text/plain' }, payload: '{"argv":["id"]}' });
    assert.equal(r.statusCode, 415);
    assert.equal(r.json().error.code, 'HYLICS_ERR_API_MEDIA_TYPE');
  } finally {
    await app.close();
  }
});

test('a local unprivileged user (uid 65534) cannot exec in a guest through --listen; root with the token can', { skip: NOT_ROOT, timeout: 300_000 }, async (t) => {
  const dir = await tempStateDir('hylics-apiauth-');
  const port = await freePort();
  const api = `http://127.0.0.1:${port}`;
  const daemon = await startDaemon(dir, ['--listen', `127.0.0.1:${port}`]);
  const guest = `auth${process.pid % 10000}`;
  t.after(async () => {
    await hylics(['guest', 'rm', guest, '--state-dir', dir]);
    await stopDaemon(daemon);
    await rm(dir, { recursive: true, force: true });
  });
  const tokenFile = join(dir, 'api-token');
  const made = await hylics(['guest', 'create', guest, '--state-dir', dir, '--share-size', '16M', '--cpus', '0.5', '--memory', '256M']);
  assert.equal(made.code, 0, made.stderr);

  const marker = `/tmp/hylics-apiauth-${process.pid}`;
  await rm(marker, { force: true });
  const attack = { argv: ['sh', '-c', `id -u > ${marker}`] };
  // without the token the listener refuses the exec that used to run as root (issue #12: it ran `id` as root)
  const r = await callAs(NOBODY, port, 'POST', `/v1/guests/${guest}/exec`, attack);
  assert.equal(r.status, 401, r.text);
  assert.equal(JSON.parse(r.text).error.code, 'HYLICS_ERR_API_UNAUTHORIZED');
  // and nobody cannot read the token (state dir 0700, file 0600)
  const st = await stat(tokenFile);
  assert.equal(st.mode & 0o777, 0o600, 'token file is root-only');
  assert.equal(st.uid, 0);
  const read = spawn('cat', [tokenFile], { uid: NOBODY, gid: NOBODY, stdio: 'ignore' });
  assert.notEqual(await new Promise((res) => read.on('close', res)), 0, 'uid 65534 read the token file');
  // the CLI as nobody, pointed at the TCP endpoint, gets the stable code too; that needs a checkout uid 65534 can
  // read (a clone under a 0700 directory, as mktemp -d makes, is not: then only the raw HTTP checks above run)
  const cliReadable = await new Promise<boolean>((res) => {
    const p = spawn('test', ['-r', entryArgv('cli/main').at(-1)!], { uid: NOBODY, gid: NOBODY, stdio: 'ignore' });
    p.on('close', (c) => res(c === 0));
  });
  if (cliReadable) {
    const cliNobody = await hylics(['guest', 'exec', guest, '--state-dir', dir, '--api', api, '--', 'id', '-u'], { uid: NOBODY });
    assert.equal(errorCode(cliNobody), 'HYLICS_ERR_API_UNAUTHORIZED', cliNobody.stderr);
  } else t.diagnostic('the checkout is not readable by uid 65534: the CLI-as-nobody checks are left out');
  // give the guest time to have run anything that slipped through
  await new Promise((res) => setTimeout(res, 500));
  const probe = await hylics(['guest', 'exec', guest, '--state-dir', dir, '--', 'sh', '-c', `test -e ${marker} && echo present || echo absent`]);
  assert.equal(probe.stdout.trim(), 'absent', 'the refused exec did not run');
  assert.ok(!existsSync(marker));

  // root's CLI on the TCP endpoint reads <state-dir>/api-token by itself
  const ok = await hylics(['guest', 'exec', guest, '--state-dir', dir, '--api', api, '--', 'id', '-u']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stdout.trim(), '0');
  // and a token from the environment works for a client that cannot read the file (e.g. copied by root)
  const token = (await readFile(tokenFile, 'utf8')).trim();
  if (cliReadable) {
    const viaEnv = await hylics(['status', '--json', '--state-dir', '/nonexistent', '--api', api], { uid: NOBODY, env: { HYLICS_API_TOKEN: token } });
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
  }
  // refusals are counted
  const metrics = await call(port, 'GET', '/metrics', { authorization: `Bearer ${token}` });
  assert.match(metrics.body, /hylics_api_requests_total\{[^}]*status="401"[^}]*\} [1-9]/);
});
