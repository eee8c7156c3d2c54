// The CLI's HTTP/1.1 exchange (src/cli/http1.ts) against a real node:http server on a Unix socket and on TCP:
// Content-Length, chunked and close-delimited bodies, request body and headers, a refused connection, a timeout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { http1Request, Http1Timeout } from '../../src/cli/http1.js';

function handler(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const echo = JSON.stringify({
      method: req.method, url: req.url, host: req.headers.host,
      auth: req.headers.authorization ?? null, body: Buffer.concat(chunks).toString(),
    });
    if (req.url === '/chunked') { res.writeHead(200, { 'content-type': 'text/plain' }); res.write('a'.repeat(70_000)); res.end('tail'); return; }
    if (req.url === '/missing') { res.writeHead(404, { 'content-type': 'application/json' }); res.end('{"error":1}'); return; }
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(echo) });
    res.end(echo);
  });
}

test('http1Request: Unix socket and TCP, length and chunked bodies, request body and headers, errors', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hylics-http1-'));
  const sock = join(dir, 's.sock');
  const unix = createServer(handler);
  const tcp = createServer(handler);
  await new Promise<void>((r) => unix.listen(sock, r));
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
  t.after(async () => { unix.close(); tcp.close(); await rm(dir, { recursive: true, force: true }); });

  const a = await http1Request({ socketPath: sock }, { method: 'POST', path: '/v1/x?y=1', host: 'localhost', headers: { 'content-type': 'application/json' }, body: Buffer.from('{"k":"é"}'), timeoutMs: 5000 });
  assert.equal(a.status, 200);
  assert.deepEqual(JSON.parse(a.body.toString()), { method: 'POST', url: '/v1/x?y=1', host: 'localhost', auth: null, body: '{"k":"é"}' });
  const port = (tcp.address() as AddressInfo).port;
  const b = await http1Request({ host: '127.0.0.1', port }, { method: 'GET', path: '/', host: `127.0.0.1:${port}`, headers: { authorization: 'Bearer t' }, timeoutMs: 5000 });
  assert.equal(JSON.parse(b.body.toString()).auth, 'Bearer t');
  assert.equal(JSON.parse(b.body.toString()).host, `127.0.0.1:${port}`);
  const c = await http1Request({ socketPath: sock }, { method: 'GET', path: '/chunked', host: 'localhost', timeoutMs: 5000 });
  assert.equal(c.headers['transfer-encoding'], 'chunked');
  assert.equal(c.body.toString(), `${'a'.repeat(70_000)}tail`);
  const d = await http1Request({ socketPath: sock }, { method: 'GET', path: '/missing', host: 'localhost', timeoutMs: 5000 });
  assert.equal(d.status, 404);
  assert.equal(d.body.toString(), '{"error":1}');

  await assert.rejects(http1Request({ socketPath: join(dir, 'none.sock') }, { method: 'GET', path: '/', host: 'localhost', timeoutMs: 5000 }), (e: NodeJS.ErrnoException) => e.code === 'ENOENT');
  // a server that accepts and never answers
  const mute = createNetServer(() => undefined);
  await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
  t.after(() => { mute.close(); });
  await assert.rejects(http1Request({ host: '127.0.0.1', port: (mute.address() as AddressInfo).port }, { method: 'GET', path: '/', host: 'x', timeoutMs: 300 }), Http1Timeout);
});
