import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nginxConf, workerConnections, type EngineModule } from '../../../src/host/modules/nginx-conf.js';
import { DEFAULT_LIMITS } from '../../../src/host/modules/types.js';

const mods: EngineModule[] = [
  { id: 'http-1', kind: 'http', root: 'www', listenAddr: '10.0.0.1', listenPort: 40001, hostPort: 18080 },
  { id: 'stream-2', kind: 'stream', root: '', listenAddr: '10.0.0.1', listenPort: 40002 },
];

test('the engine config carries the guarantees and the limits', () => {
  const c = nginxConf({ generation: 7, modules: mods, limits: DEFAULT_LIMITS });
  for (const line of ['disable_symlinks on;', 'autoindex off;', 'sendfile on;', 'tcp_nopush on;', 'max_ranges 1;', 'send_timeout 60s;',
    'client_header_timeout 10s;', 'keepalive_timeout 5s;', 'large_client_header_buffers 4 8k;', 'limit_conn conn_http_1 1024;',
    'root "/share/www";', 'root "/share";', 'listen 0.0.0.0:18080 backlog=1024;', 'return 200 "7\\n";', 'auth_request /.hylics-gate;']) {
    assert.ok(c.includes(line), line);
  }
  assert.ok(!nginxConf({ generation: 1, modules: mods.slice(0, 1), limits: DEFAULT_LIMITS }).includes('auth_request'), 'http kind is not gated');
  assert.ok(nginxConf({ generation: 1, modules: mods, limits: DEFAULT_LIMITS, disableSymlinks: false }).includes('disable_symlinks off;'));
  // every module's limit, a slot per listener (ctl + 2 + 1) and the gate's upstream connections
  assert.equal(workerConnections(mods, DEFAULT_LIMITS), 2 * 1024 + 4 + 16);
  assert.throws(() => nginxConf({ generation: 1, modules: [{ ...mods[0]!, root: 'a";evil' }], limits: DEFAULT_LIMITS }), /unsafe/);
});

test('nginx accepts the config (nginx -t)', { skip: (() => { try { execFileSync('which', ['nginx'], { stdio: 'ignore' }); return false; } catch { return 'needs nginx'; } })() }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'hylics-ngxconf-'));
  try {
    // nginx -t opens the log files and binds: point the namespace paths and listeners at a scratch directory
    let n = 0;
    const c = nginxConf({ generation: 1, modules: mods, limits: DEFAULT_LIMITS }).replaceAll('/tmp/', `${dir}/`).replaceAll('"/log/', `"${dir}/`).replace(/listen [0-9.]+:[0-9]+/g, () => `listen unix:${dir}/l${n++}.sock`).replace('unix:/log/', `unix:${dir}/`);
    writeFileSync(join(dir, 'nginx.conf'), c);
    execFileSync('nginx', ['-t', '-q', '-p', `${dir}/`, '-c', join(dir, 'nginx.conf'), '-e', 'stderr'], { stdio: 'pipe' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
