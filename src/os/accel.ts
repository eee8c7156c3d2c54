// Which accelerator QEMU uses. /dev/kvm existing is not enough: on a PVM host a stock kernel under -accel kvm
// hangs after "Booting from ROM" with no error, and -cpu host aborts. So KVM must prove itself with a probe boot
// (the guest image with hylics.probe=1 prints a marker and powers off) within a short timeout; the answer is
// cached in <state>/accel.json per host kernel, QEMU version and image, and TCG is the fallback.
// HYLICS_ACCEL=kvm|tcg forces the choice (kvm still needs /dev/kvm).
import { spawn } from 'node:child_process';
import { accessSync, constants as fsc, existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { release } from 'node:os';
import { join } from 'node:path';
import { HylicsError } from '../core/errors/index.js';
import type { GuestImage } from './image/build.js';
import { cpuModel, QEMU, qemuVersion, type Accel } from './qemu.js';

export interface AccelChoice {
  accel: Accel;
  /** Why: forced by env, probe result, cached probe, no /dev/kvm. */
  reason: string;
  /** true when answered from <state>/accel.json. */
  cached: boolean;
  probeMs?: number;
}

export const PROBE_MARKER = 'HYLICS-PROBE-OK';
const DEFAULT_PROBE_TIMEOUT_MS = 20_000;

export function kvmUsable(): boolean {
  try {
    accessSync('/dev/kvm', fsc.R_OK | fsc.W_OK);
    return true;
  } catch {
    return false;
  }
}

export interface ProbeResult { ok: boolean; ms: number; detail: string }

/** Boot the image under `accel` and wait for the probe marker on the serial console. */
export function probeBoot(image: Pick<GuestImage, 'kernel' | 'initrd'>, accel: Accel, timeoutMs = DEFAULT_PROBE_TIMEOUT_MS, binary = QEMU): Promise<ProbeResult> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const args = ['-accel', accel, '-cpu', cpuModel(accel), '-machine', 'q35', '-m', '256M', '-smp', '1', '-nodefaults', '-no-user-config', '-display', 'none',
      '-vga', 'none', '-no-reboot', '-kernel', image.kernel, '-initrd', image.initrd, '-append', 'console=ttyS0 hylics.probe=1 panic=-1 quiet', '-serial', 'stdio'];
    const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let done = false;
    const finish = (ok: boolean, detail: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (child.exitCode === null) child.kill('SIGKILL');
      resolve({ ok, ms: Date.now() - t0, detail });
    };
    const timer = setTimeout(() => finish(false, `no ${PROBE_MARKER} within ${timeoutMs} ms (the PVM hang?)`), timeoutMs);
    const onData = (b: Buffer): void => {
      out += b.toString();
      if (out.includes(PROBE_MARKER)) finish(true, 'marker seen');
      if (out.length > 200_000) out = out.slice(-10_000);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (e) => finish(false, e.message));
    child.on('exit', (code, sig) => setTimeout(() => finish(out.includes(PROBE_MARKER), `qemu exited (${code ?? sig}) before the marker: ${out.trim().split('\n').slice(-2).join(' | ')}`), 50));
  });
}

interface CacheEntry { key: string; accel: Accel; reason: string; probedAt: string; probeMs?: number }

/** Choose KVM or TCG for this host (see the file comment). */
export async function chooseAccel(opts: {
  stateDir: string;
  image: GuestImage;
  probeTimeoutMs?: number;
  onProgress?: (msg: string) => void;
}): Promise<AccelChoice> {
  const forced = process.env.HYLICS_ACCEL;
  if (forced === 'tcg') return { accel: 'tcg', reason: 'forced by HYLICS_ACCEL=tcg', cached: false };
  if (forced === 'kvm') {
    if (!kvmUsable())
      throw new HylicsError(
        'HYLICS_ERR_MICROVM_KVM_UNAVAILABLE',
        'HYLICS_ACCEL=kvm but /dev/kvm is missing or not accessible',
      );
    return { accel: 'kvm', reason: 'forced by HYLICS_ACCEL=kvm', cached: false };
  }
  if (forced !== undefined && forced !== '')
    throw new HylicsError(
      'HYLICS_ERR_INVALID_ARGUMENT',
      `HYLICS_ACCEL must be kvm or tcg, got ${JSON.stringify(forced)}`,
    );
  if (!existsSync('/dev/kvm') || !kvmUsable()) return { accel: 'tcg', reason: 'no usable /dev/kvm', cached: false };

  const key = `${release()}|qemu ${await qemuVersion()}|image ${opts.image.hash}`;
  const file = join(process.env.HYLICS_CACHE_DIR || opts.stateDir, 'accel.json'); // see cacheRoot() in image/build
  try {
    const c = JSON.parse(await readFile(file, 'utf8')) as CacheEntry;
    if (c.key === key && (c.accel === 'kvm' || c.accel === 'tcg'))
      return { accel: c.accel, reason: `${c.reason} (cached ${c.probedAt})`, cached: true, probeMs: c.probeMs };
  } catch {
    /* no cache yet */
  }
  opts.onProgress?.('probing KVM with a marker boot');
  const p = await probeBoot(opts.image, 'kvm', opts.probeTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS);
  const entry: CacheEntry = p.ok
    ? {
        key,
        accel: 'kvm',
        reason: `KVM probe boot reached userspace in ${p.ms} ms`,
        probedAt: new Date().toISOString(),
        probeMs: p.ms,
      }
    : {
        key,
        accel: 'tcg',
        reason: `KVM probe failed: ${p.detail}; using TCG (emulated)`,
        probedAt: new Date().toISOString(),
        probeMs: p.ms,
      };
  await mkdir(opts.stateDir, { recursive: true });
  await writeFile(file, JSON.stringify(entry, null, 2) + '\n');
  return { accel: entry.accel, reason: entry.reason, cached: false, probeMs: p.ms };
}
