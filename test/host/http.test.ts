import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { PACKAGE_ROOT } from '../../src/os/self.js';
import { openApiDocument } from '../../src/host/openapi.js';

test('docs/openapi.json is generated from the routes (run npm run gen:openapi when this fails)', async () => {
  const doc = await openApiDocument();
  assert.deepEqual(JSON.parse(readFileSync(`${PACKAGE_ROOT}/docs/openapi.json`, 'utf8')), JSON.parse(JSON.stringify(doc)));
  const paths = Object.keys((doc as { paths: Record<string, unknown> }).paths);
  for (const p of ['/v1/status', '/v1/guests', '/v1/guests/{name}', '/v1/guests/{name}/exec', '/v1/guests/{name}/share', '/v1/guests/{name}/modules', '/metrics']) {
    assert.ok(paths.includes(p), `${p} documented`);
  }
});
