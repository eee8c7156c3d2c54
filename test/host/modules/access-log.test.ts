// The access-log line parser: counters, and the request paths (escape=json $uri, read as latin1) that become the
// names the guest's tiered store counts as uses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AccessLog, addLighttpdLine, addLine, emptyTotals, LighttpdLineReader, MAX_PATHS, MAX_PATH_BYTES,
} from '../../../src/host/modules/access-log.js';

const latin1 = (s: string): string => Buffer.from(s, 'utf8').toString('latin1');

test('access log lines: counters, served and missing paths decoded, others ignored', () => {
  const t = emptyTotals();
  assert.equal(addLine(t, '200 1000 0.002 OK /v/a.ts'), true);
  assert.equal(addLine(t, latin1('206 10 0.001 OK /v/with space "q" ü.ts').replace('"q"', '\\"q\\"')), true);
  assert.equal(addLine(t, '304 0 0.000 OK /v/a.ts'), true);
  assert.equal(addLine(t, '404 16 0.000 OK /v/gone.ts'), true);
  assert.equal(addLine(t, '403 16 0.000 OK /v/secret'), true);
  assert.equal(addLine(t, '200 5 0.001  /v/cut.ts'), true, 'an incomplete transfer still read the file');
  assert.equal(addLine(t, '200 5 0.001 OK'), true, 'a line without a path (older format) still counts');
  assert.equal(addLine(t, '200 5 0.001 OK v/relative'), true);
  assert.equal(addLine(t, '200 5 0.001 OK /bad\\u0000nul'), true);
  assert.equal(addLine(t, 'garbage'), false);
  assert.equal(t.requests, 9);
  assert.equal(t.errors, 3);
  assert.deepEqual([...t.served].sort(), ['/v/a.ts', '/v/cut.ts', '/v/with space "q" ü.ts']);
  assert.deepEqual([...t.missing], ['/v/gone.ts']);
  for (let i = 0; i < MAX_PATHS + 10; i++) addLine(t, `200 1 0.001 OK /f${i}`);
  assert.equal(t.served.size, MAX_PATHS, 'bounded per interval');
  const u = emptyTotals();
  addLine(u, `200 1 0.001 OK /${'x'.repeat(2000)}`);
  assert.equal(u.served.size, 0, 'a path longer than any tier name is not kept');
  for (let i = 0; i < 200; i++) addLine(u, `200 1 0.001 OK /${String(i).padStart(3, '0')}${'y'.repeat(1000)}`);
  assert.ok(u.pathBytes <= MAX_PATH_BYTES && u.served.size === Math.floor(MAX_PATH_BYTES / 1005), `${u.served.size} paths, ${u.pathBytes} bytes`);
});

test('access log lines: the allocation-free parse gives what split + JSON.parse gave (reference below)', () => {
  // the parser before it was made cheaper (3 us a line in hylicsd, one line per request served)
  const reference = (t: ReturnType<typeof emptyTotals>, line: string): boolean => {
    const [s, b, rt, completion] = line.split(' ', 4);
    const uriAt = [s, b, rt, completion].reduce((at, f) => at + (f ?? '').length + 1, 0);
    const status = Number(s);
    if (!Number.isInteger(status) || !Number.isFinite(Number(b)) || !Number.isFinite(Number(rt))) return false;
    t.requests++;
    t.bytes += Number(b);
    if (status >= 400 || completion !== 'OK') t.errors++;
    let uri: string | undefined;
    try {
      const raw = uriAt < line.length ? line.slice(uriAt) : undefined;
      const v = raw === undefined ? undefined : JSON.parse(`"${Buffer.from(raw, 'latin1').toString('utf8')}"`) as unknown;
      uri = typeof v === 'string' && v.startsWith('/') && !v.includes('\0') ? v : undefined;
    } catch { uri = undefined; }
    const paths = status < 400 ? t.served : status === 404 ? t.missing : undefined;
    const fits = uri !== undefined && uri.length <= 1025 && t.pathBytes + uri.length <= MAX_PATH_BYTES;
    if (uri !== undefined && fits && paths && paths.size < MAX_PATHS && !paths.has(uri)) {
      paths.add(uri);
      t.pathBytes += uri.length;
    }
    t.latenciesMs.push(Number(rt) * 1000);
    return true;
  };
  const lines = [
    '', ' ', 'garbage', '200', '200 1', '200 1 0.1', '200 1 0.1 OK', '200 1 0.1 OK ', '200 1 0.1 OK /a b', '200 1 0.1  /c',
    '200 1 0.1 OK  /lead-space', ' 200 1 0.1 OK /x', '200  1 0.1 OK /y', '404 3 0.0 OK /gone', '416 0 0 OK /r', 'x 1 0.1 OK /z',
    '200 1 0.1 OK /q"uote', '200 1 0.1 OK /back\\\\slash', '200 1 0.1 OK /bad\\x', '200 1 0.1 OK /t\\tab', '200 1 0.1 OK rel',
    '200 1 0.1 OK /nul\\u0000', latin1('200 1 0.1 OK /ü/é.ts'), '200 1 0.1 OK /~!#$%&\'()*+,-./:;<=>?@[]^_`{|}', '200 1e3 1e-3 OK /e',
  ];
  const a = emptyTotals();
  const r = emptyTotals();
  for (const line of lines) assert.equal(addLine(a, line), reference(r, line), JSON.stringify(line));
  const plain = (t: typeof a): unknown => ({ ...t, served: [...t.served], missing: [...t.missing] });
  assert.deepEqual(plain(a), plain(r));
});

test('lighttpd log (LT_LOG_FORMAT) read from its bytes: what a regex reads, the same totals in bulk as line by line', () => {
  const odd = [
    '', ' ', 'garbage', '200', '200 1', '200 1+', '200 2+1', '200 2+1 ', '200 2+1 /', '200 4096 0 + /old-format', '200 2+1/nospace',
    ' 200 2+1 /x', '200  2+1 /y', '200 0+- /dash', '200 0-- /dd', '200 0X- /dx', '200 0- /nobytes', '200 +1 /noms', '304 0+- /v/a.ts',
    '200 7X5 /cut', '404 0-3 /gone', '404 0-3 /gone', '403 0+3 /forbidden', '416 0+0 /r', 'x 2+1 /z', '200 1+1e3 /e', '200 1.5+1 /frac',
    '0200 007+0010 /zeros', `200 1+${'1'.repeat(16)} /big`, `${'1'.repeat(15)} 1+1 /bigstatus`, `200 ${'2'.repeat(16)}+1 /longms`,
    '400 0+- 99999', '400 0+- 0+5 /fake', '400 0+- -', '200 2+1 /a b', '200 2+1 /with%20space%20%C3%BC', '200 2+1 /raw\\xc3\\xbc',
    '200 2+1 /bad%00nul', '200 2+1 /bad%zz', '200 2+1 rel', '200 2+1 *', '200 2+1 /a.ts', '200 2+1 /a.ts', '206 2-1 /a.ts',
    '404 2+1 /a.ts', '200 2+1 /a.tsx', '200 2+1 /a.t', `200 2+1 /${'x'.repeat(2000)}`, `200 2+1 /${'x'.repeat(2000)}`, '200 2+1 /\r',
    '200 2+1 /end\r', '200 2+1 /é',
  ];
  const lines = [...odd];
  for (let i = 0; i < MAX_PATHS + 50; i++) lines.push(`200 ${i % 7}+${i} /f${i % (MAX_PATHS + 20)}`, `404 0+1 /m${i}`);
  for (let i = 0; i < 100; i++) lines.push(`200 0+1 /${String(i).padStart(3, '0')}${'y'.repeat(1000)}`);
  type T = ReturnType<typeof emptyTotals>;
  const plain = (t: T): unknown => ({ ...t, served: [...t.served], missing: [...t.missing] });
  // the format by regex: status, ms, state, bytes or -, a space, the path (anything)
  const re = /^(\d{1,15}) (\d{1,15})([X+-])(-|\d{1,15}) (.*)$/s;
  const byLine = emptyTotals();
  let requests = 0, bytes = 0, errors = 0;
  const latencies: number[] = [];
  for (const line of lines) {
    const m = re.exec(line);
    assert.equal(addLighttpdLine(byLine, line), m !== null, JSON.stringify(line));
    if (m === null) continue;
    requests++;
    bytes += m[4] === '-' ? 0 : Number(m[4]);
    if (Number(m[1]) >= 400 || m[3] === 'X') errors++;
    latencies.push(Number(m[2]));
  }
  const counted = [byLine.requests, byLine.bytes, byLine.errors, byLine.latenciesMs];
  assert.deepEqual(counted, [requests, bytes, errors, latencies]);
  assert.ok(byLine.served.has('/with space \u00fc') && byLine.served.has('/raw\u00fc') && byLine.missing.has('/gone'));
  assert.ok(byLine.served.has('/a b') && !byLine.served.has('rel') && !byLine.served.has('/bad\0nul'));
  // in bulk (one reader: a path equal to the previous line's is not decoded again) as line by line
  const bulk = emptyTotals();
  const text = Buffer.from(`${lines.join('\n')}\n`, 'latin1');
  new LighttpdLineReader().addLines(bulk, text, 0, text.length);
  assert.deepEqual(plain(bulk), plain(byLine));
  // through AccessLog, the file written in pieces that cut lines anywhere
  const dir = mkdtempSync(join(tmpdir(), 'hylics-accesslog-'));
  try {
    const path = join(dir, 'm.access');
    writeFileSync(path, '');
    const log = new AccessLog(path, () => {}, 'lighttpd');
    const all = emptyTotals();
    const step = [1, 7, 100, 3, 4096, 13];
    for (let at = 0, k = 0; at < text.length; k++) {
      const n = step[k % step.length]!;
      appendFileSync(path, text.subarray(at, at + n));
      at += n;
      const t = log.drain();
      all.requests += t.requests;
      all.bytes += t.bytes;
      all.errors += t.errors;
      all.latenciesMs.push(...t.latenciesMs);
    }
    log.close();
    assert.deepEqual([all.requests, all.bytes, all.errors, all.latenciesMs], [requests, bytes, errors, latencies]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
