// The access-log line parser: counters, and the request paths (escape=json $uri, read as latin1) that become the
// names the guest's tiered store counts as uses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addLine, emptyTotals, MAX_PATHS, MAX_PATH_BYTES } from '../../../src/host/modules/access-log.js';

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
