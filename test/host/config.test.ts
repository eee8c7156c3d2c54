// hylicsd's settings: the YAML file's keys are the daemon's flags, flags win, bad input is refused with its key;
// log records in journal and text form.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DAEMON_SETTINGS, DEFAULT_SETTINGS, FLAGS, attrOf, checkSetting, diffSettings, mergeSettings, readConfigFile } from '../../src/host/config.js';
import { formatRecord, resolveForm } from '../../src/host/log.js';
import { buildFullProgram } from '../../src/cli/program.js';
import { HylicsError } from '../../src/core/errors/index.js';

test('every config key is a flag of `hylics daemon` and every daemon flag that is a setting is a key', async () => {
  const p = await buildFullProgram();
  const daemon = p.commands.find((c) => c.name() === 'daemon')!;
  const flags = daemon.options.map((o) => o.long!.replace(/^--(no-)?/, '')).filter((f) => !['config', 'rotate-api-token', 'api', 'json', 'help'].includes(f));
  assert.deepEqual(flags.sort(), Object.keys(DAEMON_SETTINGS).sort());
  for (const k of Object.keys(DAEMON_SETTINGS)) assert.ok(attrOf(k) in DEFAULT_SETTINGS || k === 'listen' || k === 'share-budget', k);
});

test('config file: read, checked, merged under the flags', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hylics-config-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const f = join(dir, 'hylicsd.yaml');
  await writeFile(f, '# comment\nstate-dir: /srv/hylics\nlog-level: debug\napi-host:\n  - a.example\nguest-firewall: true\n');
  const file = await readConfigFile(f);
  assert.deepEqual(file, { 'state-dir': '/srv/hylics', 'log-level': 'debug', 'api-host': ['a.example'], 'guest-firewall': true });
  const s = mergeSettings(file, { 'log-level': 'warn', 'guest-firewall': false });
  assert.equal(s.stateDir, '/srv/hylics');
  assert.equal(s.logLevel, 'warn'); // the flag wins
  assert.equal(s.guestFirewall, false);
  assert.deepEqual(s.apiHost, ['a.example']);
  assert.equal(s.logFormat, 'auto'); // default
  await writeFile(f, '');
  assert.deepEqual(await readConfigFile(f), {});

  const refused = async (text: string, re: RegExp): Promise<void> => {
    await writeFile(f, text);
    await assert.rejects(readConfigFile(f), (e: unknown) => e instanceof HylicsError && e.code === 'HYLICS_ERR_INVALID_ARGUMENT' && re.test(e.message));
  };
  await refused('log-levle: debug\n', /log-levle: unknown setting/);
  await refused('log-level: loud\n', /log-level: must be one of trace, debug/);
  await refused('state-dir: relative/dir\n', /state-dir: must be an absolute path/);
  await refused('guest-firewall: "no"\n', /guest-firewall: must be true or false/);
  await refused('api-host: a.example\n', /api-host: must be a list/);
  await refused('- a\n- b\n', /wants a mapping/);
  await refused('log-level: [\n', /not valid YAML/);
  await refused('share-budget: lots\n', /share-budget: /);
  await writeFile(f, 'share-budget: 8G\n');
  assert.deepEqual(await readConfigFile(f), { 'share-budget': '8G' });
  await assert.rejects(readConfigFile(join(dir, 'missing.yaml')), /cannot read config file/);
  assert.equal(checkSetting('state-dir', 'rel', FLAGS), join(process.cwd(), 'rel')); // a flag may be relative
});

test('a reload tells live settings from those that need a restart', () => {
  const a = { ...DEFAULT_SETTINGS };
  const b = { ...DEFAULT_SETTINGS, logLevel: 'debug' as const, listen: '127.0.0.1:7071', stateDir: '/elsewhere' };
  assert.deepEqual(diffSettings(a, b), { live: ['listen', 'log-level'], restart: ['state-dir'] });
  assert.deepEqual(diffSettings(a, { ...a }), { live: [], restart: [] });
});

test('log records: journal lines carry the syslog priority and no timestamp; text lines the time and level', () => {
  const rec = JSON.stringify({ level: 40, time: Date.UTC(2026, 0, 2, 3, 4, 5, 6), pid: 1, hostname: 'h', msg: 'share near its limit', guest: 'web1', used: 0.97, note: 'two words' }) + '\n';
  assert.equal(formatRecord(rec, 'journal'), '<4>share near its limit guest=web1 used=0.97 note="two words"\n');
  assert.equal(formatRecord(rec, 'text'), '03:04:05.006 WARN  share near its limit guest=web1 used=0.97 note="two words"\n');
  assert.equal(formatRecord(rec, 'json'), rec);
  assert.match(formatRecord(JSON.stringify({ level: 50, msg: 'x', err: { code: 'E' } }), 'journal'), /^<3>x err="\{\\"code\\":\\"E\\"\}"\n$/);
  assert.equal(resolveForm('auto', {}, true), 'text');
  assert.equal(resolveForm('auto', {}, false), 'json');
  assert.equal(resolveForm('json', {}, true), 'json');
  assert.equal(resolveForm('text', { JOURNAL_STREAM: '1:2' }, false), 'text'); // names another stream than ours
});
