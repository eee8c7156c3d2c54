// Module offload controlled from inside a guest (paper §4.2: the guest only exchanges control messages): the
// `hylics module` CLI run in the guest talks to its agent, the agent forwards over the control channel, and the
// host starts the module for the guest that channel belongs to — never for another guest.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { hylics, startDaemon, stopDaemon, tempStateDir } from '../helpers/cli.js';
import { NODE_BIN, entryArgv } from '../../src/os/self.js';
import type { ExecResult, GuestView } from '../../src/core/api.js';

const NOT_ROOT = process.getuid?.() !== 0 ? 'needs root (tmpfs, namespaces, nftables)' : false;

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request(url, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject).end();
  });
}

test('a guest starts, lists and stops its own modules through its agent, and only its own', { skip: NOT_ROOT, timeout: 300_000 }, async (t) => {
  const dir = await tempStateDir();
  const daemon: ChildProcess = await startDaemon(dir);
  const run = async <T>(...args: string[]): Promise<T> => {
    const r = await hylics([...args.slice(0, 2), '--state-dir', dir, '--json', ...args.slice(2)]);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}${r.stdout}`);
    return JSON.parse(r.stdout) as T;
  };
  t.after(async () => {
    for (const g of ['mc-a', 'mc-b']) await hylics(['guest', 'rm', '--state-dir', dir, g]);
    await stopDaemon(daemon);
    await rm(dir, { recursive: true, force: true });
  });
  const a = await run<GuestView>('guest', 'create', 'mc-a', '--share-size', '16M');
  await run<GuestView>('guest', 'create', 'mc-b', '--share-size', '16M');
  await writeFile(join(a.share.path, 'hello.txt'), 'served by the host\n');
  // `guest exec` passes the in-guest exit code through, so read its JSON whatever the code
  const inGuest = async (guest: string, ...args: string[]): Promise<ExecResult> => {
    const r = await hylics(['guest', 'exec', '--state-dir', dir, '--json', guest, '--', NODE_BIN, ...entryArgv('cli/main'), 'module', ...args, '--json']);
    return JSON.parse(r.stdout) as ExecResult;
  };

  const started = await inGuest('mc-a', 'start', '--kind', 'http', '--root', '/', '--port', '8080');
  assert.equal(started.exitCode, 0, started.stderr);
  const info = JSON.parse(started.stdout) as { id: string; urls: string[] };
  assert.ok(info.urls.some((u) => u.includes(`${a.address}:8080`)), JSON.stringify(info.urls));
  const got = await get(`http://${a.address}:8080/hello.txt`);
  assert.equal(got.status, 200);
  assert.equal(got.body, 'served by the host\n');

  const lsA = await inGuest('mc-a', 'ls');
  assert.deepEqual((JSON.parse(lsA.stdout) as Array<{ id: string }>).map((m) => m.id), [info.id]);
  const lsB = await inGuest('mc-b', 'ls');
  assert.deepEqual(JSON.parse(lsB.stdout), [], 'the other guest sees none of them');
  const stopB = await inGuest('mc-b', 'stop', info.id);
  assert.notEqual(stopB.exitCode, 0, 'the other guest cannot stop it');
  assert.match(stopB.stdout, /HYLICS_ERR_MODULE_NOT_FOUND/);
  const hostView = await run<Array<{ id: string }>>('module', 'ls', 'mc-a');
  assert.deepEqual(hostView.map((m) => m.id), [info.id], 'still running');

  const stopA = await inGuest('mc-a', 'stop', info.id);
  assert.equal(stopA.exitCode, 0, stopA.stderr);
  assert.deepEqual(await run('module', 'ls', 'mc-a'), []);
});
