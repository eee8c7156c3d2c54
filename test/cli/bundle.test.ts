// The `hylics` command as installed: bin/hylics.js (CommonJS) runs the bundled start dist/src/cli/main.cjs
// (scripts/build-cli.mjs). It must answer exactly as the ES module form dist/src/cli/main.js does, and the fast
// commands must load only the two files: no npm package, no further file, and no more of Node's ES module loader
// than an empty CommonJS script loads (the point of the bundle: bench/cli-latency).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
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

// bin/hylics.js run as a command (an installed `hylics`) goes through its first line, `env -S`: Node starts with
// NODE_EXTRA_CA_CERTS emptied (Node 20 parses that file at every start) and the value is back in process.env, which
// every process the CLI or daemon starts inherits, before any Hylics code runs.
test('bin/hylics.js as a command: Node starts without NODE_EXTRA_CA_CERTS, the processes it starts get it back', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hylics-extra-ca-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const probe = join(dir, 'probe.cjs');
  writeFileSync(probe, `const at = () => ({ ca: process.env.NODE_EXTRA_CA_CERTS, kept: process.env.HYLICS_NODE_EXTRA_CA_CERTS });
const start = at();
process.on('exit', () => process.stderr.write('PROBE ' + JSON.stringify({ start, exit: at() }) + '\\n'));\n`);
  const seen = (extra: NodeJS.ProcessEnv): { start: object; exit: object } => {
    const env = { ...process.env };
    delete env.NODE_EXTRA_CA_CERTS;
    // the shebang's `node` is the one on PATH: this test's Node first (node-matrix runs it on 22 and 24)
    const r = spawnSync(BIN, ['--version'], { encoding: 'utf8', env: { ...env, ...extra, HYLICS_RUN_SETUP: '', NODE_OPTIONS: `-r ${probe}`, PATH: `${dirname(NODE_BIN)}:${process.env.PATH ?? ''}` } });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(/^PROBE (.*)$/m.exec(r.stderr)![1]!) as { start: object; exit: object };
  };
  const file = '/etc/ssl/certs/some bundle.crt'; // never read here: a space in it must survive env -S
  assert.deepEqual(seen({ NODE_EXTRA_CA_CERTS: file }), { start: { ca: '', kept: file }, exit: { ca: file } });
  assert.deepEqual(seen({}), { start: { ca: '', kept: '' }, exit: {} });
});

// The premise of the above: no Hylics process makes a TLS connection, so none needs the extra certificates. The
// dashboard's fetch() runs in the browser (a script inside the page src/host/dashboard.ts serves).
test('no Hylics source opens TLS connections (node:tls, node:https, node:http2, fetch)', () => {
  const files = (d: string): string[] => readdirSync(d, { withFileTypes: true })
    .flatMap((e) => e.isDirectory() ? files(join(d, e.name)) : e.name.endsWith('.ts') ? [join(d, e.name)] : []);
  const src = join(PACKAGE_ROOT, 'src');
  const offenders = files(src).filter((f) => {
    const text = readFileSync(f, 'utf8');
    return /['"](node:)?(tls|https|http2|undici)['"]/.test(text) || (/\bfetch\(/.test(text) && !f.endsWith(join('host', 'dashboard.ts')));
  });
  assert.deepEqual(offenders.map((f) => f.slice(src.length + 1)), []);
});
