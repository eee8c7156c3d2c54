// Issue #12 item 2: the read-only host view a microVM guest mounts (its node, the package, a few files of /etc)
// must hold no host secrets. The view is built by the same script the microvm driver runs, in a private mount
// namespace here, and looked at from inside it (what virtiofsd would export).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostRootViewScript } from '../../src/os/virtiofsd.js';
import { NODE_BIN, PACKAGE_ROOT } from '../../src/os/self.js';

const NOT_ROOT = process.getuid?.() !== 0 ? 'needs root (unshare --mount)' : false;

test('the microVM host view has the CA certificates and node, not /etc/ssl/private, /etc/shadow, ssh host keys or /root', { skip: NOT_ROOT }, () => {
  const view = mkdtempSync(join(tmpdir(), 'hylics-view-'));
  try {
    const secrets = ['/etc/ssl/private', '/etc/shadow', '/etc/gshadow', '/etc/ssh', '/root', '/etc/sudoers', '/var/lib', '/home'];
    const needed = ['/etc/ssl/certs', '/etc/passwd', '/etc/ld.so.cache', '/usr/bin', NODE_BIN, join(PACKAGE_ROOT, 'package.json')];
    const check = [
      ...secrets.map((p) => `if [ -e "$V${p}" ]; then echo "VISIBLE ${p}"; fi`),
      ...needed.map((p) => `if [ ! -e "$V${p}" ]; then echo "MISSING ${p}"; fi`),
      'touch "$V"/etc/hylics-write-test 2>/dev/null && echo "WRITABLE"',
      'true',
    ].join('\n');
    const script = `${hostRootViewScript(view, { packageRoot: PACKAGE_ROOT, nodeBin: NODE_BIN, hide: [] })}\n${check}`;
    const r = spawnSync('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', script], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), '', `host view: ${r.stdout}`);
  } finally {
    rmSync(view, { recursive: true, force: true });
  }
});
