// The commander-free path of `hylics status` / `hylics guest ls` (src/cli/fast.ts): which argv take it, and that
// it answers as the full CLI does (same output, error and exit code).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseFast } from '../../src/cli/fast.js';
import { hylics } from '../helpers/cli.js';

test('the fast forms: the command words and the global options anywhere; anything else is the full parser\'s', () => {
  assert.deepEqual(parseFast(['status']), { key: 'status', opts: {} });
  assert.deepEqual(parseFast(['--state-dir', '/d', 'guest', '--json', 'ls']), { key: 'guest ls', opts: { stateDir: '/d', json: true } });
  assert.deepEqual(parseFast(['guest', 'ls', '--state-dir=/d', '--api', 'http://127.0.0.1:7070']), { key: 'guest ls', opts: { stateDir: '/d', api: 'http://127.0.0.1:7070' } });
  for (const argv of [[], ['guest'], ['guest', 'show', 'x'], ['status', '--help'], ['status', '-h'], ['guest', 'ls', '--bogus'],
    ['status', '--state-dir'], ['status', '--state-dir', '--json'], ['status', '--state-dir='], ['status', 'extra'], ['status', '--']]) {
    assert.equal(parseFast(argv), undefined, argv.join(' '));
  }
});

test('fast and full paths agree: output and exit code of a daemon that is not there, help text', async () => {
  const dir = '/nonexistent/hylics-fast-test';
  const fast = await hylics(['status', '--state-dir', dir]);
  const full = await hylics(['status', '--state-dir', dir, '--']); // `--` is not a fast form: commander runs it
  assert.equal(fast.code, full.code);
  assert.notEqual(fast.code, 0);
  assert.equal(fast.stderr, full.stderr);
  assert.match(fast.stderr, /^error HYLICS_ERR_DAEMON_UNREACHABLE: /);
  const jf = await hylics(['--json', 'guest', 'ls', '--state-dir', dir]);
  const jl = await hylics(['--json', 'guest', 'ls', '--state-dir', dir, '--']);
  assert.equal(jf.code, jl.code);
  assert.equal(jf.stdout, jl.stdout);
  assert.equal(JSON.parse(jf.stdout).error.code, 'HYLICS_ERR_DAEMON_UNREACHABLE');
  const version = await hylics(['--version']);
  assert.deepEqual(version, await hylics(['--version', '--'])); // commander's own --version
  assert.deepEqual(await hylics(['-V']), version);
  assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
  const help = await hylics(['guest', 'ls', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Usage: hylics guest ls/);
});
