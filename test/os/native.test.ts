import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HylicsError } from '../../src/core/errors/index.js';
import { nativeStatus, openBeneath, openBeneathJs, openDirBeneath, openShareDir, sendFileToSocket, splitSharePath } from '../../src/os/native.js';

const isRoot = process.getuid?.() === 0;

function fixture(t: { after: (fn: () => void) => void }): { dir: string; other: string; fd: number } {
  const base = mkdtempSync(join(tmpdir(), `hylics-native-${process.pid}-`));
  const dir = join(base, 'share');
  const other = join(base, 'other');
  mkdirSync(join(dir, 'sub', 'deep'), { recursive: true });
  mkdirSync(other);
  writeFileSync(join(dir, 'a.txt'), 'hello');
  writeFileSync(join(dir, 'sub', 'deep', 'b.txt'), 'deep');
  writeFileSync(join(other, 'secret'), 'SECRET');
  symlinkSync('/etc/passwd', join(dir, 'abs-link'));
  symlinkSync(join(other, 'secret'), join(dir, 'other-share'));
  symlinkSync('../other', join(dir, 'dir-link'));
  symlinkSync('a.txt', join(dir, 'rel-link'));
  symlinkSync('/proc/self/root/etc/passwd', join(dir, 'proc-link'));
  execFileSync('mkfifo', [join(dir, 'fifo')]);
  if (isRoot) execFileSync('mknod', [join(dir, 'null'), 'c', '1', '3']);
  const fd = openShareDir(dir);
  t.after(() => { closeSync(fd); rmSync(base, { recursive: true, force: true }); });
  return { dir, other, fd };
}

function code(fn: () => unknown): string {
  try { fn(); } catch (e) { return e instanceof HylicsError ? e.code : `non-hylics:${(e as Error).message}`; }
  return 'ok';
}

test('the addon is built and loaded here', () => {
  assert.equal(nativeStatus().loaded, true, `addon not loaded: ${nativeStatus().reason}`);
  assert.equal(nativeStatus().open, 'openat2');
});

test('splitSharePath refuses escapes before any system call', () => {
  assert.deepEqual(splitSharePath('a//b/./c'), ['a', 'b', 'c']);
  for (const p of ['/etc/passwd', '../x', 'a/../../x', 'a\0b']) assert.equal(code(() => splitSharePath(p)), 'HYLICS_ERR_PATH_ESCAPE', p);
});

for (const [name, open] of [['openat2 (addon)', (d: number, p: string) => openBeneath(d, p)], ['JS walk (fallback)', (d: number, p: string) => openBeneathJs(d, p)]] as const) {
  test(`${name}: only regular files inside the share`, (t) => {
    const { fd } = fixture(t);
    const f = open(fd, 'a.txt');
    assert.equal(readFileSync(f.fd, 'utf8'), 'hello');
    assert.equal(f.size, 5);
    closeSync(f.fd);
    const g = open(fd, 'sub/deep/b.txt');
    assert.equal(readFileSync(g.fd, 'utf8'), 'deep');
    closeSync(g.fd);
    const cases: Array<[string, string]> = [
      ['../other/secret', 'HYLICS_ERR_PATH_ESCAPE'],
      ['sub/../../other/secret', 'HYLICS_ERR_PATH_ESCAPE'],
      ['/etc/passwd', 'HYLICS_ERR_PATH_ESCAPE'],
      ['abs-link', 'HYLICS_ERR_PATH_ESCAPE'],
      ['other-share', 'HYLICS_ERR_PATH_ESCAPE'],
      ['dir-link/secret', 'HYLICS_ERR_PATH_ESCAPE'],
      ['rel-link', 'HYLICS_ERR_PATH_ESCAPE'],
      ['proc-link', 'HYLICS_ERR_PATH_ESCAPE'],
      ['fifo', 'HYLICS_ERR_NOT_REGULAR_FILE'],
      ['sub', 'HYLICS_ERR_NOT_REGULAR_FILE'],
      ['missing', 'HYLICS_ERR_FILE_NOT_FOUND'],
      ['a.txt/x', 'HYLICS_ERR_FILE_NOT_FOUND'],
    ];
    if (isRoot) cases.push(['null', 'HYLICS_ERR_NOT_REGULAR_FILE']);
    for (const [p, want] of cases) assert.equal(code(() => open(fd, p)), want, p);
  });
}

test('openDirBeneath opens directories only, beneath only', (t) => {
  const { fd } = fixture(t);
  const d = openDirBeneath(fd, 'sub/deep');
  const f = openBeneath(d.fd, 'b.txt');
  assert.equal(readFileSync(f.fd, 'utf8'), 'deep');
  closeSync(f.fd);
  assert.equal(code(() => openBeneath(d.fd, '../../a.txt')), 'HYLICS_ERR_PATH_ESCAPE');
  closeSync(d.fd);
  assert.equal(code(() => openDirBeneath(fd, 'a.txt')), 'HYLICS_ERR_FILE_NOT_FOUND');
  assert.equal(code(() => openDirBeneath(fd, 'dir-link')), 'HYLICS_ERR_PATH_ESCAPE');
  assert.equal(code(() => openBeneathJs(fd, 'dir-link', true)), 'HYLICS_ERR_PATH_ESCAPE');
});

async function pair(t: { after: (fn: () => void) => void }): Promise<{ server: Socket; client: Socket }> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  const accepted = new Promise<Socket>((r) => srv.once('connection', r));
  const client = connect(port, '127.0.0.1');
  const server = await accepted;
  t.after(() => { client.destroy(); server.destroy(); srv.close(); });
  return { server, client };
}

test('sendfile: 64 MiB byte-exact, off the main thread (the event loop keeps turning)', async (t) => {
  const { dir, fd } = fixture(t);
  const data = randomBytes(64 * 1024 * 1024);
  writeFileSync(join(dir, 'big.bin'), data);
  const f = openBeneath(fd, 'big.bin');
  t.after(() => closeSync(f.fd));
  const { server, client } = await pair(t);
  const hash = createHash('sha256');
  let got = 0;
  // a reader slower than the sender, so the sender must wait for EPOLLOUT many times
  client.on('data', (c: Buffer) => { hash.update(c); got += c.length; client.pause(); setTimeout(() => client.resume(), 0); });
  let ticks = 0;
  const ticker = setInterval(() => { ticks++; }, 1);
  const sent = await sendFileToSocket(server, f.fd, 0, data.length);
  clearInterval(ticker);
  assert.equal(sent, data.length);
  server.end();
  await new Promise((r) => client.once('end', r));
  assert.equal(got, data.length);
  assert.equal(hash.digest('hex'), createHash('sha256').update(data).digest('hex'));
  assert.ok(ticks > 0, 'timers ran while the transfer was in flight');
});

test('sendfile: offset + count; the stream fallback and the inline first chunk send the same bytes', async (t) => {
  const { dir, fd } = fixture(t);
  const data = randomBytes(3 * 1024 * 1024 + 7);
  writeFileSync(join(dir, 'mid.bin'), data);
  const f = openBeneath(fd, 'mid.bin');
  t.after(() => closeSync(f.fd));
  for (const opts of [{}, { forceStream: true }, { inlineMax: 1 << 20 }, { inlineMax: 1 << 30 }]) {
    const { server, client } = await pair(t);
    const chunks: Buffer[] = [];
    client.on('data', (c: Buffer) => chunks.push(c));
    const n = await sendFileToSocket(server, f.fd, 1000, 2_000_000, opts);
    assert.equal(n, 2_000_000);
    server.end();
    await new Promise((r) => client.once('end', r));
    assert.ok(Buffer.concat(chunks).equals(data.subarray(1000, 2_001_000)), JSON.stringify(opts));
  }
});

test('sendfile: a client that goes away rejects with PEER_CLOSED, nothing hangs', async (t) => {
  const { dir, fd } = fixture(t);
  writeFileSync(join(dir, 'big2.bin'), randomBytes(32 * 1024 * 1024));
  const f = openBeneath(fd, 'big2.bin');
  t.after(() => closeSync(f.fd));
  const { server, client } = await pair(t);
  client.pause(); // never reads: the transfer parks on EPOLLOUT
  const p = sendFileToSocket(server, f.fd, 0, 32 * 1024 * 1024);
  setTimeout(() => { client.destroy(); server.destroy(); }, 50);
  await assert.rejects(p, (e: unknown) => e instanceof HylicsError && e.code === 'HYLICS_ERR_PEER_CLOSED');
});
