// The lighttpd engine's config (module-engine: lighttpd) and its access-log lines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addLighttpdLine, emptyTotals } from '../../../src/host/modules/access-log.js';
import { lighttpdConf, lighttpdMaxConnections } from '../../../src/host/modules/lighttpd-conf.js';
import { parseLighttpdStatus } from '../../../src/host/modules/lighttpd-engine.js';
import type { EngineModule } from '../../../src/host/modules/nginx-conf.js';
import { DEFAULT_LIMITS } from '../../../src/host/modules/types.js';

const mods: EngineModule[] = [
  { id: 'http-1', kind: 'http', root: 'www', listenAddr: '10.0.0.1', listenPort: 40001, hostPort: 18080 },
  { id: 'http-2', kind: 'http', root: '', listenAddr: '10.0.0.1', listenPort: 40002 },
];

test('the lighttpd config carries the jail, the guarantees and the limits', () => {
  const c = lighttpdConf({ modules: mods, limits: DEFAULT_LIMITS });
  for (const line of ['server.chroot = "/jail"', 'server.username = "hylics-engine"', 'server.follow-symlink = "enable"',
    'server.max-read-idle = 10', 'server.max-keep-alive-idle = 5', 'server.max-write-idle = 60', 'server.max-request-field-size = 8192',
    'server.max-connections = 2049', 'server.listen-backlog = 1024', 'status.status-url = "/status"',
    // the first module: the default listener, global root and log; the control socket and the others: conditions
    'server.bind = "10.0.0.1"\nserver.port = 40001\nserver.document-root = "/m/http-1"\naccesslog.filename = "/log/http-1.access"\n',
    '$SERVER["socket"] == "/log/ctl.sock" {\n  server.document-root = "/.hylics-none"\n  accesslog.filename = ""\n',
    '$SERVER["socket"] == "0.0.0.0:18080" {', '$SERVER["socket"] == "10.0.0.1:40002" {',
    'server.document-root = "/m/http-2"', 'accesslog.filename = "/log/http-2.access"', 'url.access-deny = ( "" )']) {
    assert.ok(c.includes(line), line);
  }
  assert.match(c, /^server.modules = \( "mod_access", "mod_accesslog", "mod_status" \)$/m, 'no mod_dirlisting: no directory listing');
  assert.ok(!c.includes('$SERVER["socket"] == "10.0.0.1:40001"'), 'the default listener has no condition');
  // one module (as the engine writes it): the control socket is the only $SERVER condition a request is matched to
  const one = lighttpdConf({ modules: [mods[1]!], limits: DEFAULT_LIMITS });
  assert.deepEqual(one.match(/^\$SERVER\["socket"\] == "[^"]*"/gm), ['$SERVER["socket"] == "/log/ctl.sock"']);
  assert.equal(lighttpdMaxConnections(mods, DEFAULT_LIMITS), 2049);
  assert.match(lighttpdConf({ modules: mods, limits: DEFAULT_LIMITS, maxFds: 1000 }), /server\.max-fds = 1000\n/);
  assert.throws(() => lighttpdConf({ modules: [{ ...mods[0]!, id: 'a"evil' }], limits: DEFAULT_LIMITS }), /unsafe/);
});

test('lighttpd accepts the config (lighttpd -t)', { skip: (() => { try { execFileSync('which', ['lighttpd'], { stdio: 'ignore' }); return false; } catch { return 'needs lighttpd'; } })() }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'hylics-ltconf-'));
  try {
    writeFileSync(join(dir, 'lighttpd.conf'), lighttpdConf({ modules: mods, limits: DEFAULT_LIMITS }));
    execFileSync('lighttpd', ['-t', '-f', join(dir, 'lighttpd.conf')], { stdio: 'pipe' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('lighttpd access log lines: counters, aborted transfers, %-encoded and \\xHH paths decoded', () => {
  const t = emptyTotals();
  assert.equal(addLighttpdLine(t, '200 2+1000 /v/a.ts'), true);
  assert.equal(addLighttpdLine(t, '206 1-10 /v/with%20space%20%22q%22%20%C3%BC.ts'), true);
  assert.equal(addLighttpdLine(t, '200 1-10 /v/raw\\xc3\\xbc.ts'), true);
  assert.equal(addLighttpdLine(t, '404 0+345 /v/gone.ts'), true);
  assert.equal(addLighttpdLine(t, '200 7X5 /v/cut.ts'), true, 'an aborted transfer still read the file');
  assert.equal(addLighttpdLine(t, '304 0+- /v/a.ts'), true);
  assert.equal(addLighttpdLine(t, '200 0+5 /bad%00nul'), true);
  assert.equal(addLighttpdLine(t, '200 0+5 /bad%zz'), true);
  assert.equal(addLighttpdLine(t, 'garbage'), false);
  assert.equal(addLighttpdLine(t, '200 4096 0 + /old-format'), false, 'the spaced format of before is not ours');
  assert.equal(addLighttpdLine(t, '400 0+- 99999'), true, 'a target of digits stays the path, not the time');
  assert.equal(t.requests, 9);
  assert.equal(t.errors, 3);
  assert.equal(t.bytes, 1000 + 10 + 10 + 345 + 5 + 5 + 5);
  assert.deepEqual([...t.served].sort(), ['/v/a.ts', '/v/cut.ts', '/v/raw\u00fc.ts', '/v/with space "q" \u00fc.ts']);
  assert.deepEqual([...t.missing], ['/v/gone.ts']);
  assert.deepEqual(t.latenciesMs.slice(0, 2), [2, 1]);
});

test('mod_status ?auto as connection counts', () => {
  const s = parseLighttpdStatus('Total Accesses: 12\nTotal kBytes: 3\nUptime: 5\nBusyServers: 2\nIdleServers: 100\nScoreboard: hr__\n');
  assert.equal(s.active, 2);
  assert.equal(s.requests, 12);
  assert.ok(Number.isNaN(s.writing));
});
