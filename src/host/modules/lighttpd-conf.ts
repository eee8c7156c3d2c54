// The lighttpd configuration of one module of a guest's module engine (pure: text in, text out; lighttpd-engine.ts
// runs one lighttpd process per module, each with its own file of this), the alternative to nginx-conf.ts.
// Paths are those inside the engine's mount namespace
// (lighttpd-engine.ts): lighttpd reads this file, loads its modules and binds its sockets as root there, then
// chroots into /jail, which holds only each module's root (/jail/m/<id>, read-only) and the log directory
// (/jail/log, its logs write-only for it), and drops to the user. So the rest of the share, /usr, the config and
// other guests' files do not exist for anything it serves: a symlink, followed or swapped in at any moment, resolves
// inside the jail, i.e. to a file one of the guest's modules serves anyway. Every other choice is for speed
// (lighttpd as the bench runs it: small files read into memory and written with the headers, larger ones sent with
// sendfile) or a limit (docs/modules.md).
import { MIME } from './mime.js';
import type { EngineModule } from './nginx-conf.js';
import type { ModuleLimits } from './types.js';

/** Where the share is inside the jail (lighttpd's document roots are paths after the chroot). */
export const JAIL = '/jail';
/** Each module's root is bound at /jail/m/<id>: the only files in the jail. */
export const JAIL_ROOTS = '/m';
export const LT_LOG = '/log';
/** The control listener (mod_status), a Unix socket in the log directory, reachable only from the host. */
export const LT_CTL_SOCKET = 'ctl.sock';
/** A module's own control socket (each module's lighttpd process has one, in the shared log directory). */
export function ltCtlSocket(id: string): string { return `${id}.${LT_CTL_SOCKET}`; }
/** The user lighttpd drops to, by name (it resolves it with getpwnam before the chroot: passwd is written for it). */
export const LT_USER = 'hylics-engine';
/**
 * Access log line: status, request time (ms), the connection state after the response (X: aborted before it
 * completed, + kept alive, - closed), body bytes (`-` for none), the request path as sent (still %-encoded; lighttpd
 * writes bytes outside printable ASCII as \xHH): "200 1+4096 /a.ts". Two literals between the fields, not four:
 * lighttpd appends each piece of the format per request (the four spaces of `%>s %b %{ms}T %X %U` cost ~150 of its
 * ~8,300 user-space instructions per 4 KiB request, callgrind, docs/modules.md); the state byte ends the
 * milliseconds, and a space ends the bytes before the path, which is whatever the client sent (it may start with
 * digits). Parsed by LighttpdLineReader (access-log.ts).
 */
export const LT_LOG_FORMAT = '%>s %{ms}T%X%b %U';
/** File descriptors beyond two per connection (lighttpd counts a connection's socket and its file). */
const FD_SLACK = 64;

/** lighttpd string literal: the values we put in are ours (ids, numbers, checked roots), but refuse anyway. */
function q(s: string): string {
  if (/["\\\n\r$]/.test(s)) throw new Error(`unsafe value for lighttpd config: ${JSON.stringify(s)}`);
  return `"${s}"`;
}

export interface LighttpdConfOptions {
  modules: EngineModule[];
  limits: ModuleLimits;
  /** Cap of server.max-fds (the engine's hard limit of open files: lighttpd cannot raise it without privilege). */
  maxFds?: number;
  /** Name of the control socket in the log directory (default LT_CTL_SOCKET; per module: ltCtlSocket(id)). */
  ctlSocket?: string;
}

/**
 * Client connections lighttpd may hold: the sum of its modules' limits (+1 for the control socket). The engine
 * writes one module per process, so this is that module's own cap.
 */
export function lighttpdMaxConnections(modules: EngineModule[], limits: ModuleLimits): number {
  return modules.length * limits.maxConnections + 1;
}

export function lighttpdConf(o: LighttpdConfOptions): string {
  const L = o.limits;
  const ctl = `${LT_LOG}/${o.ctlSocket ?? LT_CTL_SOCKET}`;
  const conns = lighttpdMaxConnections(o.modules, L);
  const secs = (ms: number): number => Math.max(1, Math.ceil(ms / 1000));
  const mime = Object.entries(MIME).map(([ext, type]) => `  ${q(ext)} => ${q(type)},`).join('\n');
  // The first module (the engine writes one per process) is the default listener and its root and log are the
  // global settings: a request to it matches no $SERVER["socket"] condition but the control socket's (each matched
  // condition costs lighttpd config patching per request: ~240 of ~8,800 user-space instructions per 4 KiB request,
  // callgrind, docs/modules.md). Any further module keeps a condition of its own.
  const [first, ...rest] = o.modules;
  if (first === undefined) throw new Error('lighttpdConf: no module');
  const settings = (m: EngineModule, indent: string): string => [
    `${indent}server.document-root = ${q(`${JAIL_ROOTS}/${m.id}`)}`,
    `${indent}accesslog.filename = ${q(`${LT_LOG}/${m.id}.access`)}`,
  ].join('\n');
  const hostPort = (m: EngineModule, body: string): string[] =>
    m.hostPort !== undefined ? [`$SERVER["socket"] == ${q(`0.0.0.0:${m.hostPort}`)} {\n${body}}`] : [];
  const mods = [
    ...hostPort(first, ''),
    ...rest.map((m) => {
      const body = `${settings(m, '  ')}\n`;
      return [`$SERVER["socket"] == ${q(`${m.listenAddr}:${m.listenPort}`)} {\n${body}}`, ...hostPort(m, body)].join('\n');
    }),
  ];
  return `# generated by hylicsd: module engine (lighttpd)
# no mod_dirlisting: a directory is never listed (403; a directory name without its slash: 301)
server.modules = ( "mod_access", "mod_accesslog", "mod_status" )
server.chroot = ${q(JAIL)}
server.username = ${q(LT_USER)}
server.groupname = ${q(LT_USER)}
server.tag = "hylics"
server.bind = ${q(first.listenAddr)}
server.port = ${first.listenPort}
${settings(first, '')}
# the control socket serves nothing but the status page, and logs nothing (its requests are not the module's)
$SERVER["socket"] == ${q(ctl)} {
  server.document-root = "/.hylics-none"
  accesslog.filename = ""
  status.status-url = "/status"
}
server.upload-dirs = ( "/tmp" )
server.stat-cache-engine = "simple"
server.network-backend = "sendfile"
# symlinks are followed: inside the jail they can only name files of the guest's module roots (what its modules
# serve anyway). "disable" would refuse them, but it checks with lstat (racy) and cost 80 % more CPU per 4 KiB
# request (24 -> 44 us, docs/modules.md); the jail is the guarantee
server.follow-symlink = "enable"
server.range-requests = "enable"
static-file.etags = "enable"
mimetype.assign = (
${mime}
  "" => "application/octet-stream",
)
# GET and HEAD only (lighttpd would answer a POST to a static file with the file): anything else is refused, 403.
# Two string comparisons, not the regex !~ "^(GET|HEAD)$": that one ran pcre2 on every request (~330 more
# instructions per 4 KiB request in lighttpd's user space, of ~9,100; callgrind, docs/modules.md)
$HTTP["request-method"] != "GET" {
  $HTTP["request-method"] != "HEAD" {
    url.access-deny = ( "" )
  }
}
accesslog.format = ${q(LT_LOG_FORMAT)}
server.max-connections = ${conns}
server.max-fds = ${Math.min(2 * conns + FD_SLACK, o.maxFds ?? Infinity)}
server.listen-backlog = ${L.maxConnections}
server.max-read-idle = ${secs(L.headersTimeoutMs)}
server.max-keep-alive-idle = ${secs(L.keepAliveTimeoutMs)}
server.max-keep-alive-requests = ${L.keepAliveRequests}
server.max-write-idle = ${secs(L.stallMs)}
server.max-request-field-size = ${L.maxHeaderSize}
server.max-request-size = 1
${mods.join('\n')}
`;
}
