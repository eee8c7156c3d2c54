import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSize, formatSize, validateGuestName, parseCpus } from '../../src/core/units.js';

test('parseSize accepts binary units', () => {
  assert.equal(parseSize('4096'), 4096);
  assert.equal(parseSize('64K'), 65536);
  assert.equal(parseSize('64M'), 64 * 1024 * 1024);
  assert.equal(parseSize('64MiB'), 64 * 1024 * 1024);
  assert.equal(parseSize('1.5G'), 1.5 * 1024 ** 3);
  assert.equal(formatSize(64 * 1024 * 1024), '64.0 MiB');
});

test('parseSize rejects junk with a stable code', () => {
  for (const bad of ['', '-1', '0', 'abc', '12Q', '1e9', '0.0001']) {
    assert.throws(() => parseSize(bad), { code: 'HYLICS_ERR_INVALID_SIZE' }, bad);
  }
});

test('guest names are short and plain', () => {
  assert.equal(validateGuestName('web-1'), 'web-1');
  for (const bad of ['', '1abc', 'Web', 'a'.repeat(33), 'a/b', '../x', 'ab-', 'a b']) {
    assert.throws(() => validateGuestName(bad), { code: 'HYLICS_ERR_INVALID_NAME' }, bad);
  }
});

test('cpus are fractional and bounded', () => {
  assert.equal(parseCpus('0.5'), 0.5);
  assert.equal(parseCpus(2), 2);
  for (const bad of ['0', '-1', 'x', '1e3', '0.001']) assert.throws(() => parseCpus(bad), { code: 'HYLICS_ERR_INVALID_ARGUMENT' }, bad);
});
