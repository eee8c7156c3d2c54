// `hylics offload sendfile --fd N FILE` (inside a guest): socket offload for apps in any language. The app starts
// this command with its connected TCP socket inherited as fd N (e.g. Python's subprocess pass_fds); the command
// passes it to the guest agent with SCM_RIGHTS (src/guest/offload-fd.ts), which hands the connection to the host
// for the send of FILE and restores it on the same socket. Prints { bytes, by, reason?, finished? } (JSON).
// --head-file: bytes sent before FILE (the app's response headers), as the agent's `head`.
import { createReadStream } from 'node:fs';
import { createConnection } from 'node:net';
import type { Readable } from 'node:stream';
import type { Command } from 'commander';
import { HylicsError, isErrorCode } from '../../core/errors/index.js';
import { MAX_HANDOFF_HEAD_BYTES } from '../../core/protocol/index.js';
import { DEFAULT_OFFLOAD_SOCKET } from '../../guest/offload-fd.js';
import { sendWithFd } from '../../os/tcp-repair.js';
import { printJson } from '../output.js';

function intArg(v: string | undefined, what: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `${what} must be a whole number >= 0, got ${JSON.stringify(v)}`, { what, value: v });
  return Number(v);
}

/**
 * The head's bytes from `path` (`-`: stdin), at most MAX_HANDOFF_HEAD_BYTES (read up to one byte more, so a larger
 * input is refused without reading it all). Empty: no head. Read before anything is passed to the agent, so a bad
 * head changes nothing.
 */
export async function readHead(path: string): Promise<Buffer | undefined> {
  const max = MAX_HANDOFF_HEAD_BYTES;
  const input: Readable = path === '-' ? process.stdin : createReadStream(path, { end: max });
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of input) {
      chunks.push(c as Buffer);
      n += (c as Buffer).length;
      if (n > max) break;
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `--head-file ${path}: ${code ?? (e as Error).message}`, { option: '--head-file', path, ...(code ? { errno: code } : {}) });
  } finally {
    if (path === '-') process.stdin.destroy(); else input.destroy();
  }
  if (n > max) {
    throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `--head-file ${path}: the head is over ${max} bytes (MAX_HANDOFF_HEAD_BYTES)`, { option: '--head-file', path, max });
  }
  return n === 0 ? undefined : Buffer.concat(chunks);
}

/** Pass `fd` and the request to the agent's offload socket; resolves with its answer. */
export function offloadSendfile(
  socketPath: string,
  fd: number,
  req: { path: string; offset?: number; count?: number; mode?: 'return' | 'terminal'; head?: string },
): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const c = createConnection({ path: socketPath });
    let buf = '';
    c.setEncoding('utf8');
    c.on('error', (e) => reject(new HylicsError('HYLICS_ERR_AGENT_UNREACHABLE', `the agent's offload socket ${socketPath}: ${e.message}`, { socket: socketPath })));
    c.on('connect', () => {
      try {
        sendWithFd((c as unknown as { _handle: { fd: number } })._handle.fd, Buffer.from(JSON.stringify(req)), fd);
      } catch (e) {
        c.destroy();
        reject(e);
      }
    });
    c.on('data', (d: string) => { buf += d; });
    c.on('end', () => {
      let r: { ok?: boolean; error?: { code?: string; message?: string; details?: Record<string, unknown> } } & Record<
        string,
        unknown
      >;
      try { r = JSON.parse(buf) as typeof r; } catch { reject(new HylicsError('HYLICS_ERR_AGENT_UNREACHABLE', `no answer from the agent's offload socket ${socketPath}`)); return; }
      if (r.ok) { const rest: Record<string, unknown> = { ...r }; delete rest.ok; resolve(rest); return; }
      const code = isErrorCode(r.error?.code) ? r.error!.code : 'HYLICS_ERR_INTERNAL';
      reject(new HylicsError(code, r.error?.message ?? 'offload failed', r.error?.details ?? {}));
    });
  });
}

export function register(program: Command): void {
  const o = program.command('offload').description('in a guest: hand a socket to the host for the send of a file (socket offload, any language)');
  o.command('sendfile <file>')
    .description(
      "send FILE (in the share) on the inherited socket fd N by the host; the connection stays the app's (keep-alive)",
    )
    .requiredOption('--fd <n>', 'the connected TCP socket, inherited from the calling app')
    .option('--offset <bytes>', 'first byte of FILE', '0')
    .option('--count <bytes>', 'bytes to send (default: to the end)')
    .option('--terminal', 'the host finishes the connection (FIN) after the file')
    .option(
      '--head-file <path>',
      `bytes to send before FILE, e.g. the response headers (at most ${MAX_HANDOFF_HEAD_BYTES}; - : stdin): ` +
        'by the host with the file, or by the agent first when the send stays in the guest',
    )
    .option('--socket <path>', "the agent's offload socket", DEFAULT_OFFLOAD_SOCKET)
    .action(
      async (
        file: string,
        opts: { fd: string; offset: string; count?: string; terminal?: boolean; headFile?: string; socket: string },
      ) => {
        // every argument checked (the head read) before the socket goes to the agent: a bad one changes nothing
        const fd = intArg(opts.fd, '--fd')!;
        const offset = intArg(opts.offset, '--offset')!;
        const count = intArg(opts.count, '--count');
        const head = opts.headFile !== undefined ? await readHead(opts.headFile) : undefined;
        const r = await offloadSendfile(opts.socket, fd, {
          path: file,
          offset,
          ...(count !== undefined ? { count } : {}),
          mode: opts.terminal ? 'terminal' : 'return',
          ...(head ? { head: head.toString('base64') } : {}),
        });
        printJson(r);
      },
    );
}
