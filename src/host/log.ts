// hylicsd's log lines. pino writes JSON; this sink prints each record in the form its reader wants:
//  - journal: under systemd (JOURNAL_STREAM names our stdout) one `<P>message key=value ...` line, where <P> is
//    the sd-daemon syslog priority prefix, so `journalctl -p warning` filters by level; no timestamp (journald
//    stamps every line itself) and no pid/hostname (journald records them too);
//  - text: a terminal: `HH:MM:SS.mmm LEVEL message key=value ...`;
//  - json: pino's own line (files, pipes, log shippers): unchanged from before, parsed by nothing here.
// A few dozen lines instead of pino-pretty: that one prints colours and multi-line objects for terminals, and
// knows nothing of journald's priority prefixes.
import { fstatSync } from 'node:fs';
import { pino, type Logger } from 'pino';
import type { LOG_FORMATS, LOG_LEVELS } from './config.js';

export type LogFormat = (typeof LOG_FORMATS)[number];
export type LogForm = 'journal' | 'text' | 'json';

/** pino level number -> syslog priority (sd-daemon(3) prefix) and a short name. */
const LEVELS: Record<number, { syslog: number; name: string }> = {
  10: { syslog: 7, name: 'TRACE' }, 20: { syslog: 7, name: 'DEBUG' }, 30: { syslog: 6, name: 'INFO' },
  40: { syslog: 4, name: 'WARN' }, 50: { syslog: 3, name: 'ERROR' }, 60: { syslog: 2, name: 'FATAL' },
};
/** Fields every pino record has that the text forms print elsewhere (level, time) or leave to journald. */
const OMIT = new Set(['level', 'time', 'pid', 'hostname', 'msg']);

/** Is stdout the journal? systemd sets JOURNAL_STREAM=<dev>:<inode> of the stream it connected (systemd.exec(5)). */
export function stdoutIsJournal(env: NodeJS.ProcessEnv = process.env): boolean {
  const js = env.JOURNAL_STREAM;
  if (!js) return false;
  try {
    const st = fstatSync(1);
    return js === `${st.dev}:${st.ino}`;
  } catch { return false; }
}

export function resolveForm(
  format: LogFormat,
  env: NodeJS.ProcessEnv = process.env,
  isTTY = process.stdout.isTTY === true,
): LogForm {
  const journal = stdoutIsJournal(env);
  if (format === 'json') return 'json';
  if (format === 'text') return journal ? 'journal' : 'text';
  return journal ? 'journal' : isTTY ? 'text' : 'json';
}

function fieldValue(v: unknown): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v) ?? String(v);
  return /^[^\s"=]+$/.test(s) ? s : JSON.stringify(s);
}

/** One pino JSON record in the given form (a line with its newline). */
export function formatRecord(line: string, form: LogForm): string {
  if (form === 'json') return line;
  let rec: Record<string, unknown>;
  try { rec = JSON.parse(line) as Record<string, unknown>; } catch { return line; }
  const lv = LEVELS[rec.level as number] ?? { syslog: 6, name: String(rec.level) };
  const fields = Object.entries(rec).filter(([k]) => !OMIT.has(k)).map(([k, v]) => `${k}=${fieldValue(v)}`);
  const text = [String(rec.msg ?? ''), ...fields].join(' ');
  if (form === 'journal') return `<${lv.syslog}>${text}\n`;
  const t = new Date(typeof rec.time === 'number' ? rec.time : Date.now()).toISOString().slice(11, 23);
  return `${t} ${lv.name.padEnd(5)} ${text}\n`;
}

/** pino's destination: stdout in the current form; the form can change on reload. */
export class LogSink {
  constructor(public form: LogForm) {}
  write(line: string): void {
    process.stdout.write(formatRecord(line, this.form));
  }
}

export function daemonLogger(level: (typeof LOG_LEVELS)[number], format: LogFormat): { log: Logger; sink: LogSink } {
  const sink = new LogSink(resolveForm(format));
  return { log: pino({ level }, sink), sink };
}
