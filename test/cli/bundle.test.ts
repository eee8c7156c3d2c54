// The `hylics` command as installed: bin/hylics.js (CommonJS) runs the bundled start dist/src/cli/main.cjs
// (scripts/build-cli.mjs). It must answer exactly as the ES module form dist/src/cli/main.js does, and the fast
// commands must load only the two files: no npm package, no further file, and no more of Node's ES module loader
// than an empty CommonJS script loads (the point of the bundle: bench/cli-latency).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NODE_BIN, PACKAGE_ROOT } from '../../src/os/self.js';

const BIN = join(PACKAGE_ROOT, 'bin', 'hylics.js');
const CLI = join(PACKAGE_ROOT, 'dist', 'src', 'cli');
const ABSENT = '/nonexistent/hylics-bundle-test';

function run(argv: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(NODE_BIN, argv, { encoding: 'utf8', env: { ...process.env, HYLICS_RUN_SETUP: '' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('the bundle is built beside the tsc output and not older than it', () => {
  assert.ok(existsSync(join(CLI, 'main.cjs')), 'dist/src/cli/main.cjs missing: npm run build makes it');
  for (const f of ['main.js', 'fast.js', 'client.js', 'http1.js', 'commands/status.js', 'commands/guest.js']) {
    assert.ok(statSync(join(CLI, 'main.cjs')).mtimeMs >= statSync(join(CLI, f)).mtimeMs, `main.cjs older than ${f}: run npm run build`);
  }
});

test('bin/hylics.js (bundle) answers as dist/src/cli/main.js does: fast forms, other commands, help, errors', () => {
  for (const args of [
    ['status', '--state-dir', ABSENT], ['--json', 'guest', 'ls', '--state-dir', ABSENT], ['--state-dir', ABSENT, 'guest', 'ls'],
    ['guest', 'show', 'x', '--state-dir', ABSENT], ['--version'], ['guest', 'ls', '--help'], ['nosuch'],
    ['sim', '--help'],
  ]) {
    const bundled = run([BIN, ...args]);
    const esm = run([join(CLI, 'main.js'), ...args]);
    assert.deepEqual(bundled, esm, args.join(' '));
  }
  assert.match(run([BIN, 'status', '--state-dir', ABSENT]).stderr, /^error HYLICS_ERR_DAEMON_UNREACHABLE: /);
});

test('status and guest ls load bin/hylics.js and the bundle only, without the ES module loader', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hylics-bundle-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  // preloaded: at exit, the files CommonJS loaded and the ES module loader's internal modules Node loaded
  const probe = join(dir, 'probe.cjs');
  writeFileSync(probe, `process.on('exit', () => process.stderr.write('PROBE ' + JSON.stringify({
    files: Object.keys(require.cache).filter((f) => f !== __filename),
    esm: process.moduleLoadList.filter((m) => m.includes('internal/modules/esm/')) }) + '\\n'));\n`);
  const empty = join(dir, 'empty.cjs');
  writeFileSync(empty, '\n');
  const loaded = (argv: string[]): { files: string[]; esm: string[] } =>
    JSON.parse(/^PROBE (.*)$/m.exec(run(['-r', probe, ...argv]).stderr)![1]!) as { files: string[]; esm: string[] };
  const floor = new Set(loaded([empty]).esm);
  for (const args of [['status'], ['guest', 'ls'], ['--json', 'guest', 'ls']]) {
    const l = loaded([BIN, ...args, '--state-dir', ABSENT]);
    assert.deepEqual(l.files, [BIN, join(CLI, 'main.cjs')], args.join(' '));
    assert.deepEqual(l.esm.filter((m) => !floor.has(m)), [], `${args.join(' ')}: ES module loader started`);
  }
});
