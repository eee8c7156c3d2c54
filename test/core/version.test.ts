import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { VERSION } from '../../src/core/version.js';
import { AGENT_SOFTWARE } from '../../src/guest/agent.js';

test('the one VERSION is package.json\'s (src/core/version.ts is generated: npm run build)', () => {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  assert.equal(VERSION, pkg.version);
  assert.equal(AGENT_SOFTWARE, `hylics-agent/${pkg.version}`);
});
