import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { PACKAGE_ROOT } from '../../src/os/self.js';
import { openApiDocument } from '../../src/host/openapi.js';
import { pino } from 'pino';
import { buildApi } from '../../src/host/http.js';
import { DaemonMetrics } from '../../src/host/metrics.js';
import type { Command } from '../../src/core/api.js';

test('docs/openapi.json is generated from the routes (run npm run gen:openapi when this fails)', async () => {
  const doc = await openApiDocument();
  assert.deepEqual(JSON.parse(readFileSync(`${PACKAGE_ROOT}/docs/openapi.json`, 'utf8')), JSON.parse(JSON.stringify(doc)));
  const paths = Object.keys((doc as { paths: Record<string, unknown> }).paths);
  for (const p of ['/v1/status', '/v1/guests', '/v1/guests/{name}', '/v1/guests/{name}/exec', '/v1/guests/{name}/share', '/v1/guests/{name}/modules', '/metrics']) {
    assert.ok(paths.includes(p), `${p} documented`);
  }
});

test('docs/api.md lists every route of the OpenAPI document', async () => {
  const doc = (await openApiDocument()) as { paths: Record<string, Record<string, unknown>> };
  const md = readFileSync(`${PACKAGE_ROOT}/docs/api.md`, 'utf8');
  const missing: string[] = [];
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const m of Object.keys(methods)) {
      const route = `${m.toUpperCase()} ${path}`;
      if (!md.includes(`| \`${route}`)) missing.push(route);
    }
  }
  assert.deepEqual(missing, [], 'routes missing from the table in docs/api.md');
});

test('module routes: the body is checked by the channel op\'s schema before the daemon sees it; results keep every field', async () => {
  const seen: Command[] = [];
  const info = { id: 'm1', guest: 'g', kind: 'http', root: 'www', port: 80, hostPort: 8080, urls: ['http://10.213.1.2/'], startedAt: 'now', totals: { requests: 1, bytes: 2, errors: 0 } };
  const app = await buildApi({
    execute: async (cmd) => {
      seen.push(cmd);
      if (cmd.op === 'module.start') return info;
      if (cmd.op === 'module.list') return [info];
      if (cmd.op === 'module.stop') return { stopped: cmd.id };
      throw new Error("unexpected command");
    },
    metrics: new DaemonMetrics({ guestsSnapshot: async () => [] }),
  }, pino({ level: 'silent' }));
  try {
    for (const payload of [{ kind: 'ftp', root: 'www', port: 80 }, { kind: 'http', root: 'www', port: 0 }, { kind: 'http', root: 'www', port: 80, extra: 1 }, { kind: 'http', port: 80 }]) {
      const r = await app.inject({ method: 'POST', url: '/v1/guests/g/modules', payload });
      assert.equal(r.statusCode, 400, JSON.stringify(payload));
      assert.equal(r.json().error.code, 'HYLICS_ERR_INVALID_ARGUMENT');
    }
    assert.equal(seen.length, 0, 'no invalid body reached the daemon');
    const started = await app.inject({ method: 'POST', url: '/v1/guests/g/modules', payload: { kind: 'http', root: 'www', port: 80, hostPort: 8080 } });
    assert.equal(started.statusCode, 201);
    assert.deepEqual(started.json(), info);
    assert.deepEqual((await app.inject({ method: 'GET', url: '/v1/guests/g/modules' })).json(), [info]);
    assert.deepEqual((await app.inject({ method: 'DELETE', url: '/v1/guests/g/modules/m1' })).json(), { stopped: 'm1' });
    assert.deepEqual(seen.map((c) => c.op), ['module.start', 'module.list', 'module.stop']);
  } finally {
    await app.close();
  }
});
