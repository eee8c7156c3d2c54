import { test } from 'node:test';
import assert from 'node:assert/strict';
import { run, runRaw } from '../../src/os/exec.js';
import { isHylicsError } from '../../src/core/errors/index.js';

test('run returns output and throws HYLICS_ERR_OS_COMMAND_FAILED with stderr on a non-zero exit', async () => {
  assert.equal((await run('sh', ['-c', 'echo out; echo err >&2'])).stdout, 'out\n');
  assert.equal((await run('cat', [], { input: 'piped' })).stdout, 'piped');
  const e = await run('sh', ['-c', 'echo bad thing >&2; exit 3']).then(() => undefined, (x: unknown) => x);
  assert.ok(isHylicsError(e) && e.code === 'HYLICS_ERR_OS_COMMAND_FAILED');
  assert.equal(e.details?.exitCode, 3);
  assert.match(e.message, /exit 3.*bad thing/);
  assert.equal((await runRaw('sh', ['-c', 'exit 5'])).code, 5);
});

test('a missing program is HYLICS_ERR_MISSING_DEPENDENCY, a hung one HYLICS_ERR_TIMEOUT', async () => {
  await assert.rejects(run('hylics-no-such-program', []), (e: unknown) => isHylicsError(e) && e.code === 'HYLICS_ERR_MISSING_DEPENDENCY');
  await assert.rejects(run('sleep', ['5'], { timeoutMs: 100 }), (e: unknown) => isHylicsError(e) && e.code === 'HYLICS_ERR_TIMEOUT');
});
