// The CLI's shape: every command loads lazily and registers under its own name, global options go anywhere,
// and the client path (`hylics guest ls`, `hylics status`) does not reach the daemon's or the guest's heavy
// modules (ajv, fastify, pino, vega).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { COMMANDS } from '../../src/cli/commands/index.js';
import { buildProgram, commandName } from '../../src/cli/program.js';
import { errorCode, hylics, startDaemon, stopDaemon, tempStateDir } from '../helpers/cli.js';
import { rm } from 'node:fs/promises';

const NOT_ROOT = process.getuid?.() !== 0 ? 'needs root (hylicsd)' : false;

test('commandName finds the command past global options and help', () => {
  assert.equal(commandName(['--state-dir', 'guest', 'status']), 'status'); // a value is not a command
  assert.equal(commandName(['--json', 'guest', 'ls']), 'guest');
  assert.equal(commandName(['help', 'module']), 'module');
  assert.equal(commandName(['--version']), undefined);
  assert.equal(commandName(['--', 'guest']), undefined);
});

test('every command entry loads a module that registers that command with the listed summary', async () => {
  for (const c of COMMANDS) {
    const p = await buildProgram(['node', 'hylics', c.name]);
    const cmd = p.commands.find((x) => x.name() === c.name);
    assert.ok(cmd, c.name);
    assert.equal(cmd.description(), c.summary, c.name);
    assert.equal(p.commands.length, 1, `${c.name}: only the command run is registered`);
  }
  const help = await buildProgram(['node', 'hylics', '--help']);
  assert.deepEqual(help.commands.map((x) => x.name()), COMMANDS.map((c) => c.name));
});

/** Static imports of a compiled module, followed through relative paths; bare package names are collected. */
function staticGraph(entry: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (f: string): void => {
    if (files.has(f)) return;
    files.add(f);
    const src = readFileSync(f, 'utf8');
    for (const m of src.matchAll(/^(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|^import\s+['"]([^'"]+)['"]/gm)) {
      const spec = (m[1] ?? m[2])!;
      if (spec.startsWith('.')) visit(resolve(dirname(f), spec));
      else if (!spec.startsWith('node:')) packages.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
    }
  };
  visit(entry);
  return { files, packages };
}

test('the client path loads commander and nothing heavy', () => {
  const cli = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli');
  for (const entry of ['main.js', 'commands/guest.js', 'commands/status.js', 'commands/share.js', 'commands/module.js']) {
    const g = staticGraph(join(cli, entry));
    assert.deepEqual([...g.packages], ['commander'].filter((p) => g.packages.has(p)), `${entry} reaches ${[...g.packages].join(', ')}`);
    const far = [...g.files].filter((f) => /[/\\](host|os|guest)[/\\]/.test(f));
    assert.deepEqual(far, [], `${entry} reaches ${far.join(', ')}`);
  }
});

test('global options before or after the command name reach the command', async (t) => {
  const dir = await tempStateDir('hylics-cli-globals-');
  t.after(() => rm(dir, { recursive: true, force: true }));
  // no daemon on this state dir: the error names the socket, so it shows which state dir the command used
  for (const args of [['--state-dir', dir, 'guest', 'ls'], ['guest', '--state-dir', dir, 'ls'], ['guest', 'ls', '--state-dir', dir], ['--state-dir', '/nonexistent', 'status', '--state-dir', dir]]) {
    const r = await hylics(args);
    assert.equal(r.code, 1, args.join(' '));
    assert.equal(errorCode(r), 'HYLICS_ERR_DAEMON_UNREACHABLE', args.join(' '));
    assert.ok(r.stderr.includes(join(dir, 'hylicsd.sock')), `${args.join(' ')}: ${r.stderr}`);
  }
  const j = await hylics(['--json', '--state-dir', dir, 'status']);
  assert.equal(JSON.parse(j.stdout).error.code, 'HYLICS_ERR_DAEMON_UNREACHABLE');
  const bad = await hylics(['--state-dir', dir, 'nosuch']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown command 'nosuch'/);
});

test('guest ls and status against a running daemon, global options first', { skip: NOT_ROOT, timeout: 120_000 }, async (t) => {
  const dir = await tempStateDir('hylics-cli-daemon-');
  const d = await startDaemon(dir);
  t.after(async () => { await stopDaemon(d); await rm(dir, { recursive: true, force: true }); });
  const ls = await hylics(['--state-dir', dir, '--json', 'guest', 'ls']);
  assert.equal(ls.code, 0, ls.stderr);
  assert.deepEqual(JSON.parse(ls.stdout), []);
  const st = await hylics(['--state-dir', dir, 'status']);
  assert.equal(st.code, 0, st.stderr);
  assert.match(st.stdout, new RegExp(`state dir ${dir}`));
});
