// hylicsd as a systemd service: the unit passes `systemd-analyze verify`; the daemon run as the unit runs it
// (--config, stdout taken for the journal) logs priority-prefixed lines, applies a reload (SIGHUP) live, keeps
// running on a bad config, and names what needs a restart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFile, mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:net';
import { NODE_BIN, entryArgv } from '../../src/os/self.js';
import { hylics, stopDaemon } from '../helpers/cli.js';
import { waitUntil } from '../helpers/proc.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const UNIT = join(ROOT, 'contrib', 'systemd', 'hylicsd.service');
const hasAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;

test('the systemd unit passes systemd-analyze verify (and a broken copy does not)', { skip: hasAnalyze ? false : 'needs systemd-analyze (apt-get install systemd)' }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hylics-unit-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const unit = join(dir, 'hylicsd.service');
  await copyFile(UNIT, unit);
  const ok = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(ok.stderr.split('\n').filter((l) => l.includes('hylicsd.service')).join('\n'), '');
  const text = await readFile(UNIT, 'utf8');
  assert.match(text, /^KillMode=process$/m); // guests outlive a stop
  assert.match(text, /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
  await writeFile(unit, text.replace('Type=exec', 'Type=exacting'));
  const broken = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
  assert.match(broken.stderr, /Type|Failed to parse/);
});

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

test('hylicsd under a config file: journal lines, reload applies live settings, bad config keeps the old ones', { skip: process.getuid?.() !== 0 ? 'needs root (hylicsd)' : false, timeout: 180_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hylics-svc-'));
  const stateDir = join(dir, 'state');
  const conf = join(dir, 'hylicsd.yaml');
  const logPath = join(dir, 'journal.log');
  await writeFile(conf, `state-dir: ${stateDir}\nlog-level: info\nguest-firewall: false\n`);
  const log = await open(logPath, 'a');
  const st = await stat(logPath);
  // what systemd does: stdout connected to the journal and JOURNAL_STREAM naming it (here a file stands in)
  const d = spawn(NODE_BIN, [...entryArgv('cli/main'), 'daemon', '--config', conf], { stdio: ['ignore', log.fd, log.fd], env: { ...process.env, JOURNAL_STREAM: `${st.dev}:${st.ino}` } });
  await log.close();
  t.after(async () => { await stopDaemon(d); await rm(dir, { recursive: true, force: true }); });
  const lines = async (): Promise<string[]> => (await readFile(logPath, 'utf8')).split('\n');
  await waitUntil('hylicsd ready', async () => (await lines()).some((l) => l.startsWith('<6>hylicsd ready ')), 60_000, 200);
  const ready = (await lines()).find((l) => l.startsWith('<6>hylicsd ready '))!;
  assert.match(ready, new RegExp(`stateDir=${stateDir} `));
  assert.doesNotMatch(ready, /"time"|pid=|hostname=/); // journald records those itself
  assert.ok((await lines()).some((l) => l.startsWith('<4>guest firewall off')), 'a warning carries priority 4');
  assert.equal((await hylics(['status', '--state-dir', stateDir])).code, 0);

  // reload: debug level and a TCP listener, live
  const port = await freePort();
  await writeFile(conf, `state-dir: ${stateDir}\nlog-level: debug\nguest-firewall: false\nlisten: 127.0.0.1:${port}\n`);
  d.kill('SIGHUP');
  await waitUntil('reload done', async () => (await lines()).some((l) => l.startsWith('<6>reload done ')), 60_000, 200);
  assert.match((await lines()).find((l) => l.startsWith('<6>reload done '))!, /applied=.*listen.*log-level/);
  const tcp = await hylics(['status', '--json', '--api', `http://127.0.0.1:${port}`, '--state-dir', stateDir]);
  assert.equal(tcp.code, 0, tcp.stderr);
  assert.equal(JSON.parse(tcp.stdout).stateDir, stateDir);

  // a bad file: refused with its key, the daemon keeps its settings and serves on
  await writeFile(conf, `state-dir: ${stateDir}\nlog-level: loud\n`);
  d.kill('SIGHUP');
  await waitUntil('reload failed', async () => (await lines()).some((l) => l.startsWith('<3>reload failed') && l.includes('log-level: must be one of')), 60_000, 200);
  assert.equal((await hylics(['status', '--api', `http://127.0.0.1:${port}`, '--state-dir', stateDir])).code, 0);

  // state-dir and guest-firewall need a restart: said so, not applied; the listener goes when it leaves the file
  await writeFile(conf, `state-dir: ${join(dir, 'other')}\nguest-firewall: false\n`);
  d.kill('SIGHUP');
  await waitUntil('restart warning', async () => (await lines()).some((l) => l.startsWith('<4>reload: these settings apply only after a restart') && l.includes('state-dir')), 60_000, 200);
  await waitUntil('second reload done', async () => (await lines()).filter((l) => l.startsWith('<6>reload done ')).length === 2, 60_000, 200);
  assert.equal((await hylics(['status', '--state-dir', stateDir])).code, 0);
  assert.notEqual((await hylics(['status', '--api', `http://127.0.0.1:${port}`, '--state-dir', stateDir])).code, 0);

  await stopDaemon(d);
  assert.equal(d.exitCode, 0);
  assert.ok((await lines()).some((l) => l.startsWith('<6>hylicsd stopping (guests keep running)')));
});
