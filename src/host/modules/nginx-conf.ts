// The nginx configuration of one guest's module engine (pure: text in, text out). The paths are those inside the
// engine's mount namespace (see engine.ts): /share = that guest's share (read-only, nodev), /log = access logs and
// the control socket, /gate = the stream gate's sockets, /tmp = nginx's own scratch. Every choice here is either
// for speed (sendfile, tcp_nopush, open_file_cache, one worker like lighttpd) or a guarantee (see docs/modules.md).
import { MIME, SEGMENT_EXT } from './mime.js';
import type { ModuleKind, ModuleLimits } from './types.js';

export const NS_SHARE = '/share';
export const NS_LOG = '/log';
export const NS_GATE = '/gate';
/** The control listener (generation + stub_status), reachable only from the host through the log directory. */
export const CTL_SOCKET = 'ctl.sock';
/** Internal location the stream kind asks before a media segment is served (auth_request). */
export const GATE_PATH = '/.hylics-gate';
/** Access log line: status, body bytes, request time (s, ms resolution), OK or empty (broken transfer). */
// $uri last (it may hold spaces; escape=json makes quotes, backslashes and control bytes \uXXXX): the files served
// count as uses for the guest's tiered store (access-log.ts, docs/tier.md)
export const LOG_FORMAT = '$status $body_bytes_sent $request_time $request_completion $uri';

/** File descriptors beyond connections (log files, cached open files are counted separately, the rest). */
const FD_SLACK = 64;
/** Connections a stream module's nginx may hold to its gate (kept alive + in flight). */
const GATE_CONNS = 16;
/** open_file_cache entries: descriptors of hot files kept open (errors are not cached: 404 floods cost nothing). */
const OPEN_FILE_CACHE_MAX = 1000;

export interface EngineModule {
  id: string;
  kind: ModuleKind;
  /** Module root relative to the share root ('' = the share root). Checked by the manager (no '..'). */
  root: string;
  listenAddr: string;
  listenPort: number;
  hostPort?: number;
}

export interface EngineConfOptions {
  generation: number;
  modules: EngineModule[];
  limits: ModuleLimits;
  /** `disable_symlinks on` (default). Off only to measure what it costs (bench); see docs/modules.md. */
  disableSymlinks?: boolean;
}

/** nginx string literal: the values we put in are ours (ids, numbers), but quote anyway. */
function q(s: string): string {
  if (/["\\\n\r$;{}]/.test(s)) throw new Error(`unsafe value for nginx config: ${JSON.stringify(s)}`);
  return `"${s}"`;
}

function typesBlock(): string {
  const byType = new Map<string, string[]>();
  for (const [ext, type] of Object.entries(MIME)) {
    const t = type.split(';')[0]!.trim(); // the charset module adds "; charset=utf-8" to text types
    byType.set(t, [...(byType.get(t) ?? []), ext.slice(1)]);
  }
  return [...byType].map(([t, exts]) => `    ${t} ${exts.join(' ')};`).join('\n');
}

function errorPages(): string {
  // plain one-line bodies (as the node module had) instead of nginx's HTML pages; not for 400: a request nginx
  // could not parse cannot be redirected to a named location (it would become a 500)
  const codes: Array<[number, string]> = [[403, 'Forbidden'], [404, 'Not Found'], [405, 'Method Not Allowed']];
  return codes.map(([c]) => `    error_page ${c} = @e${c};`).join('\n') + '\n'
    + codes.map(([c, t]) => `    location @e${c} { default_type text/plain; return ${c} "${c} ${t}\\n"; }`).join('\n');
}

function serverBlock(m: EngineModule, o: EngineConfOptions): string {
  const root = m.root === '' ? NS_SHARE : `${NS_SHARE}/${m.root}`;
  const L = o.limits;
  const lines = [
    `  server {`,
    `    listen ${m.listenAddr}:${m.listenPort} backlog=${L.maxConnections};`,
    ...(m.hostPort !== undefined ? [`    listen 0.0.0.0:${m.hostPort} backlog=${L.maxConnections};`] : []),
    `    root ${q(root)};`,
    `    access_log ${q(`${NS_LOG}/${m.id}.access`)} hylics buffer=32k flush=1s;`,
    `    limit_conn ${zone(m.id)} ${L.maxConnections};`,
    errorPages(),
  ];
  if (m.kind === 'stream') {
    const up = `gate_${m.id.replace(/-/g, '_')}`;
    const seg = [...SEGMENT_EXT].map((e) => e.slice(1)).join('|');
    lines.push(
      // playlists: read whole by the gate (never torn) which also learns what they list
      `    location ~* \\.m3u8$ { proxy_pass http://${up}; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_max_temp_file_size 0; }`,
      // media segments: only once a playlist lists them (the gate answers 204, or 401 = not listed yet)
      `    location ~* \\.(${seg})$ { auth_request ${GATE_PATH}; error_page 401 = @unlisted; }`,
      `    location = ${GATE_PATH} { internal; proxy_pass http://${up}; proxy_pass_request_body off; proxy_set_header Content-Length ""; proxy_set_header X-Hylics-Uri $request_uri; proxy_http_version 1.1; proxy_set_header Connection ""; }`,
      `    location @unlisted { default_type text/plain; return 404 "404 Not Found\\n"; }`,
    );
  }
  lines.push('  }');
  return lines.join('\n');
}

function zone(id: string): string {
  return `conn_${id.replace(/-/g, '_')}`;
}

/**
 * Connections the engine's one worker may hold: the sum of its modules' client limits plus what nginx itself
 * uses (a slot per listening socket, the control listener, connections to the stream gate). A client connection
 * beyond that is closed as soon as it is accepted, idle or not.
 */
export function workerConnections(modules: EngineModule[], limits: ModuleLimits): number {
  const listeners = 1 + modules.reduce((a, m) => a + (m.hostPort !== undefined ? 2 : 1), 0);
  const gate = modules.filter((m) => m.kind === 'stream').length * GATE_CONNS;
  return modules.length * limits.maxConnections + listeners + gate;
}

export function nginxConf(o: EngineConfOptions): string {
  const L = o.limits;
  const wc = workerConnections(o.modules, L);
  const upstreams = o.modules.filter((m) => m.kind === 'stream').map((m) =>
    `  upstream gate_${m.id.replace(/-/g, '_')} { server ${q(`unix:${NS_GATE}/${m.id}.sock`)}; keepalive 8; }`);
  return `# generated by hylicsd: module engine, generation ${o.generation}
worker_processes 1;
worker_rlimit_nofile ${wc + OPEN_FILE_CACHE_MAX + FD_SLACK};
pid /tmp/nginx.pid;
lock_file /tmp/nginx.lock;
error_log stderr warn;
events { worker_connections ${wc}; }
http {
  types {
${typesBlock()}
  }
  default_type application/octet-stream;
  charset utf-8;
  charset_types text/plain text/css text/javascript text/vtt application/json application/xml image/svg+xml;
  server_tokens off;
  log_format hylics escape=json '${LOG_FORMAT}';
  access_log off;
  client_body_temp_path /tmp/body; proxy_temp_path /tmp/proxy; fastcgi_temp_path /tmp/fastcgi; uwsgi_temp_path /tmp/uwsgi; scgi_temp_path /tmp/scgi;

  # one sendfile per response, corked with its headers. Not sendfile_max_chunk (nginx waits a 1 ms timer after
  # each chunk), nor a small sndbuf or tcp_nopush off: each measured no cheaper under bbr (docs/modules.md)
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  open_file_cache max=${OPEN_FILE_CACHE_MAX} inactive=20s;
  open_file_cache_valid 1s;
  open_file_cache_errors off;
  disable_symlinks ${o.disableSymlinks === false ? 'off' : 'on'};
  autoindex off;
  max_ranges 1;
  if_modified_since exact;

  client_header_timeout ${Math.ceil(L.headersTimeoutMs / 1000)}s;
  client_body_timeout ${Math.ceil(L.headersTimeoutMs / 1000)}s;
  client_max_body_size 1k;
  client_header_buffer_size 1k;
  large_client_header_buffers 4 ${Math.ceil(L.maxHeaderSize / 1024)}k;
  keepalive_timeout ${Math.ceil(L.keepAliveTimeoutMs / 1000)}s;
  keepalive_requests ${L.keepAliveRequests};
  send_timeout ${Math.ceil(L.stallMs / 1000)}s;
  reset_timedout_connection on;
  limit_conn_status 503;
  limit_conn_log_level info;
${o.modules.map((m) => `  limit_conn_zone $nginx_version zone=${zone(m.id)}:64k;`).join('\n')}
${upstreams.join('\n')}

  server {
    listen ${q(`unix:${NS_LOG}/${CTL_SOCKET}`)};
    access_log off;
    location = /generation { return 200 "${o.generation}\\n"; }
    location = /status { stub_status; }
    location / { return 404; }
  }
${o.modules.map((m) => serverBlock(m, o)).join('\n')}
}
`;
}
