// The demo's guest-side workload (run inside the guest by `hylics demo` through exec):
//   compress --share DIR --size 32M   make a data set in the share and pigz it, tracked as task "compress"
//   serve --share DIR --file F --port P   serve F over HTTP from inside the guest for one request, tracked as "deliver"
// Both report their response times to the host profiler through the agent (track()).
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join, basename } from 'node:path';
import { parseArgs } from 'node:util';
import { parseSize } from '../core/units.js';
import { track } from './lib.js';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { share: { type: 'string', default: '/mnt/hylics' }, size: { type: 'string', default: '32M' }, file: { type: 'string' }, port: { type: 'string', default: '8081' } },
});

/** Compressible but not trivial data: text-like lines with random words, like logs. */
async function makeData(path: string, bytes: number): Promise<void> {
  const words = Array.from({ length: 512 }, () => randomBytes(6).toString('base64url'));
  const fh = await open(path, 'w');
  try {
    let written = 0;
    let line = 0;
    while (written < bytes) {
      const parts: string[] = [];
      for (let i = 0; i < 2048; i++) {
        parts.push(`${line++} ${new Date(1_700_000_000_000 + line * 1000).toISOString()} ${words[(line * 7) % 512]} ${words[(line * 13) % 512]} status=${200 + (line % 5)} bytes=${(line * 997) % 100000}\n`);
      }
      const chunk = Buffer.from(parts.join('')).subarray(0, bytes - written);
      await fh.write(chunk);
      written += chunk.length;
    }
  } finally {
    await fh.close();
  }
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}`))));
  });
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return h.digest('hex');
}

async function compress(): Promise<void> {
  const share = values.share!;
  const input = join(share, 'dataset.log');
  const output = 'dataset.log.gz';
  await makeData(input, parseSize(values.size!, 'size'));
  const t0 = Date.now();
  await track('compress', () => run('pigz', ['-k', '-f', '-p', '2', input]));
  const ms = Date.now() - t0;
  const out = join(share, output);
  process.stdout.write(JSON.stringify({ input: basename(input), output, inBytes: (await stat(input)).size, outBytes: (await stat(out)).size, ms, sha256: await sha256File(out) }) + '\n');
}

async function serveOnce(): Promise<void> {
  const file = join(values.share!, basename(values.file!));
  const size = (await stat(file)).size;
  await new Promise<void>((resolve, reject) => {
    const server = createServer((req, res) => {
      void track('deliver', () => new Promise<void>((done, fail) => {
        res.writeHead(200, { 'content-type': 'application/gzip', 'content-length': size });
        const rs = createReadStream(file);
        rs.on('error', fail);
        res.on('finish', done);
        res.on('error', fail);
        rs.pipe(res);
      })).then(() => { server.close(); resolve(); }, reject);
    });
    server.on('error', reject);
    server.listen(Number(values.port), '0.0.0.0');
    setTimeout(() => { server.close(); reject(new Error('no client came within 60 s')); }, 60_000).unref();
  });
}

const cmd = positionals[0];
if (cmd === 'compress') await compress();
else if (cmd === 'serve') await serveOnce();
else {
  process.stderr.write('usage: demo-task compress|serve [--share DIR] [--size N] [--file F] [--port P]\n');
  process.exit(2);
}
// track() may keep a connection to the agent open: the task is done, so leave.
process.exit(0);
