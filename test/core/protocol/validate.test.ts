import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

// Loading the protocol prints nothing: every guest CLI process loads it, and apps and task reports read its stderr
// (ajv warns on stderr about the option that makes maxLength count code units).
test('loading the channel validators writes nothing to stderr or stdout', () => {
  const url = new URL('../../../src/core/protocol/index.js', import.meta.url).href;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', `await import(${JSON.stringify(url)});`], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '');
  assert.equal(r.stdout, '');
});
