// The benches' splice download client (bench/lib/splice-client.{ts,py}) against a raw TCP server on 127.0.0.1:
// a body of exactly Content-Length (headers split across writes, also inside the blank line), and the failures it
// must report: a short body, a longer one, a non-200 status, a chunked body, no Content-Length, a bad status line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { SpliceClient } from '../../bench/lib/splice-client.js';

const BIG = 3 * 1024 * 1024 + 7;
const hasSplice = ((): boolean => {
  try { return execFileSync('python3', ['-c', 'import os; print(hasattr(os, "splice"))']).toString().trim() === 'True'; } catch { return false; }
})();

function respond(sock: Socket, path: string): void {
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const send = async (parts: Array<string | Buffer>): Promise<void> => {
    for (const p of parts) { sock.write(p); await pause(20); }
    sock.end();
  };
  switch (path) {
    case '/ok': void send(['HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n', `Content-Length: ${BIG}\r\n\r`, '\n', Buffer.alloc(BIG, 7)]); break;
    case '/short': void send(['HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n', Buffer.alloc(500)]); break;
    case '/long': void send(['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n', Buffer.alloc(20)]); break;
    case '/missing': void send(['HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n']); break;
    case '/chunked': void send(['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n']); break;
    case '/nolength': void send(['HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nabc']); break;
    default: void send(['garbage\r\n\r\n']);
  }
}

test('splice client: exact Content-Length bodies pass, every mismatch and bad response fails', { skip: hasSplice ? false : 'python3 without os.splice (needs >= 3.10)' }, async () => {
  const requests: string[] = [];
  const server = createServer((sock) => {
    let head = '';
    sock.on('data', (b: Buffer) => {
      head += b.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      requests.push(head);
      respond(sock, head.split(' ')[1] ?? '');
    });
    sock.on('error', () => { /* the client may close first */ });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const client = SpliceClient.start();
  try {
    const ok = await client.get(`${base}/ok`);
    assert.equal(ok.status, 200);
    assert.equal(ok.bytes, BIG);
    assert.ok(ok.seconds > 0 && ok.cpuSeconds >= 0);
    assert.ok(ok.firstSeconds > 0 && ok.firstSeconds <= ok.seconds, `first body byte ${ok.firstSeconds} s within ${ok.seconds} s`);
    assert.match(requests[0]!, /^GET \/ok HTTP\/1\.1\r\nHost: 127\.0\.0\.1:\d+\r\n/);
    assert.match(requests[0]!, /\r\nConnection: close\r\n/);
    await assert.rejects(client.get(`${base}/short`), /body 500 bytes, Content-Length 1000/);
    await assert.rejects(client.get(`${base}/long`), /more body bytes than Content-Length 10/);
    await assert.rejects(client.get(`${base}/missing`), /status 404/);
    await assert.rejects(client.get(`${base}/chunked`), /Transfer-Encoding chunked/);
    await assert.rejects(client.get(`${base}/nolength`), /no valid Content-Length/);
    await assert.rejects(client.get(`${base}/x`), /bad status line/);
    await assert.rejects(client.get('ftp://127.0.0.1/x'), /not an http:\/\/ URL/);
    assert.equal((await client.get(`${base}/ok`)).bytes, BIG, 'the client keeps working after failures');
  } finally {
    await client.close();
    await new Promise((r) => server.close(r));
  }
});
