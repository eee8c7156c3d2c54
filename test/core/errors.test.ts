import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ERRORS, HylicsError, renderErrorsMarkdown, toHylicsError } from '../../src/core/errors/index.js';
import { PACKAGE_ROOT } from '../../src/os/self.js';

test('docs/errors.md is generated from the registry (run npm run gen:errors when this fails)', () => {
  const doc = readFileSync(`${PACKAGE_ROOT}/docs/errors.md`, 'utf8');
  assert.equal(doc, renderErrorsMarkdown());
});

test('every code is HYLICS_ERR_* in upper snake case with an HTTP status and a doc line', () => {
  for (const [code, spec] of Object.entries(ERRORS)) {
    assert.match(code, /^HYLICS_ERR_[A-Z0-9_]+$/);
    assert.ok(spec.http >= 400 && spec.http < 600, code);
    assert.ok(spec.doc.length > 20, `${code} needs a real doc line`);
  }
});

test('HylicsError round-trips through JSON and unknown codes degrade to INTERNAL', () => {
  const e = new HylicsError('HYLICS_ERR_INVALID_SIZE', 'bad', { value: 'x' });
  const back = HylicsError.fromJSON(JSON.parse(JSON.stringify(e)));
  assert.equal(back.code, 'HYLICS_ERR_INVALID_SIZE');
  assert.deepEqual(back.details, { value: 'x' });
  assert.equal(back.http, 400);
  assert.equal(HylicsError.fromJSON({ code: 'NOPE', message: 'm' }).code, 'HYLICS_ERR_INTERNAL');
  assert.equal(toHylicsError(new Error('boom')).code, 'HYLICS_ERR_INTERNAL');
});
