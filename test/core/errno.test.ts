import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ERRNO_CODES, codeForErrno, errnoOf } from '../../src/core/errors/errno.js';
import { isErrorCode } from '../../src/core/errors/index.js';

test('the errno table: each kind of call maps its errnos and falls back to its own code', () => {
  assert.equal(codeForErrno('openBeneath', 'ELOOP'), 'HYLICS_ERR_PATH_ESCAPE');
  assert.equal(codeForErrno('openBeneath', 'EPERM'), 'HYLICS_ERR_FILE_ACCESS');
  assert.equal(codeForErrno('tcpRepair', 'EPERM'), 'HYLICS_ERR_TCP_REPAIR_DENIED');
  assert.equal(codeForErrno('tcpRepair', 'EBADF'), 'HYLICS_ERR_TCP_REPAIR_FAILED');
  assert.equal(codeForErrno('send', 'ETIMEDOUT'), 'HYLICS_ERR_SEND_STALLED');
  assert.equal(codeForErrno('send', undefined), 'HYLICS_ERR_NATIVE_IO');
  assert.equal(codeForErrno('spawn', 'ENOENT', 'HYLICS_ERR_NFT_FAILED'), 'HYLICS_ERR_MISSING_DEPENDENCY');
  assert.equal(codeForErrno('spawn', 'EACCES', 'HYLICS_ERR_NFT_FAILED'), 'HYLICS_ERR_NFT_FAILED');
  assert.equal(codeForErrno('apiConnect', 'EACCES'), 'HYLICS_ERR_NOT_ROOT');
  assert.equal(codeForErrno('diskTier', 'EDQUOT'), 'HYLICS_ERR_TIER_FULL');
  // an inherited name is no errno
  assert.equal(codeForErrno('openBeneath', 'toString'), 'HYLICS_ERR_NATIVE_IO');
  for (const rule of Object.values(ERRNO_CODES)) {
    assert.ok(isErrorCode(rule.otherwise));
    for (const code of Object.values(rule.codes)) assert.ok(isErrorCode(code), code);
  }
});

test('errnoOf reads the addon\'s errno or a Node error\'s code, never a registry code', () => {
  assert.equal(errnoOf({ errno: 'ELOOP', code: 'HYLICS_ERR_PATH_ESCAPE' }), 'ELOOP');
  assert.equal(errnoOf(Object.assign(new Error('x'), { code: 'ENOENT', errno: -2 })), 'ENOENT');
  assert.equal(errnoOf({ code: 'HYLICS_ERR_INTERNAL' }), undefined);
  assert.equal(errnoOf(undefined), undefined);
});
