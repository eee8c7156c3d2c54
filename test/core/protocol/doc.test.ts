import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { BUILTIN_OPS, BUILTIN_EVENTS, MARKER } from '../../../src/core/protocol/index.js';
import { CHANNEL } from '../../../src/core/errors/codes/channel.js';
import { PACKAGE_ROOT } from '../../../src/os/self.js';

test('docs/protocol.md documents every built-in op, event and channel error code, and the marker bytes', () => {
  const doc = readFileSync(`${PACKAGE_ROOT}/docs/protocol.md`, 'utf8');
  for (const op of BUILTIN_OPS) assert.ok(doc.includes(`### \`${op.name}\``), `op ${op.name}`);
  for (const ev of BUILTIN_EVENTS) assert.ok(doc.includes(`\`${ev.name}\``), `event ${ev.name}`);
  for (const code of Object.keys(CHANNEL)) assert.ok(doc.includes(code), code);
  const hex = [...MARKER].map((b) => b.toString(16).toUpperCase().padStart(2, '0')).join(' ');
  assert.ok(doc.includes(hex), `marker ${hex}`);
});
