// The guest kernel comes from Debian's packages: the versioned package that `linux-image-cloud-amd64` depends
// on (resolved at build time, never hard-coded), fetched with `apt-get download` into a cache and unpacked with
// `dpkg -x`. The cloud flavour has virtio-fs, vsock and virtio-net/blk/console as modules; the modules ship
// without modules.dep, so `depmod -b` makes one and we load the closure in dependency order.
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { HylicsError } from '../../core/errors/index.js';
import { run } from './run.js';

export const KERNEL_META_PACKAGE = 'linux-image-cloud-amd64';

/** Modules the guest needs (their dependencies are added from modules.dep). Optional ones may be missing. */
export const GUEST_MODULES = ['virtio_pci', 'virtio_blk', 'virtio_net', 'virtio_console', 'virtiofs', 'button', 'evdev'];
export const OPTIONAL_MODULES = ['vmw_vsock_virtio_transport'];

export interface KernelPackage { name: string; version: string; deb: string }

/** `apt-cache depends linux-image-cloud-amd64` -> linux-image-6.1.0-NN-cloud-amd64. */
export async function resolveKernelPackageName(): Promise<string | undefined> {
  const r = await run('apt-cache', ['depends', KERNEL_META_PACKAGE], { allowFail: true }).catch(() => undefined);
  if (!r || r.code !== 0) return undefined;
  const m = /Depends:\s*(linux-image-[0-9][^\s<>]*)/.exec(r.stdout);
  return m?.[1];
}

function cachedDebs(cacheDir: string, name?: string): string[] {
  if (!existsSync(cacheDir)) return [];
  return readdirSync(cacheDir).filter((f) => f.endsWith('.deb') && f.startsWith(name ? `${name}_` : 'linux-image-')).sort();
}

/**
 * The kernel .deb in `cacheDir`, downloading it when the resolved version is not cached yet. Works offline when
 * apt cannot resolve but a package is already cached (the newest cached one is used).
 */
export async function fetchKernelPackage(cacheDir: string, progress: (msg: string) => void): Promise<KernelPackage> {
  await mkdir(cacheDir, { recursive: true });
  const name = await resolveKernelPackageName();
  if (name) {
    let debs = cachedDebs(cacheDir, name);
    if (debs.length === 0) {
      progress(`downloading ${name} (apt-get download)`);
      const r = await run('apt-get', ['download', '-q', name], { cwd: cacheDir, allowFail: true });
      debs = cachedDebs(cacheDir, name);
      if (r.code !== 0 || debs.length === 0) {
        throw new HylicsError('HYLICS_ERR_MICROVM_KERNEL_UNAVAILABLE', `apt-get download ${name} failed: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`, { package: name });
      }
    } else progress(`kernel package ${debs[debs.length - 1]} is cached`);
    return describeDeb(cacheDir, debs[debs.length - 1]!);
  }
  const any = cachedDebs(cacheDir);
  if (any.length === 0) {
    throw new HylicsError('HYLICS_ERR_MICROVM_KERNEL_UNAVAILABLE', `apt-cache cannot resolve ${KERNEL_META_PACKAGE} (run apt-get update?) and no kernel package is cached in ${cacheDir}`, { cacheDir });
  }
  progress(`apt-cache cannot resolve ${KERNEL_META_PACKAGE}; using cached ${any[any.length - 1]}`);
  return describeDeb(cacheDir, any[any.length - 1]!);
}

function describeDeb(cacheDir: string, file: string): KernelPackage {
  const [name, version] = file.replace(/\.deb$/, '').split('_');
  return { name: name!, version: decodeURIComponent(version ?? 'unknown'), deb: join(cacheDir, file) };
}

export interface UnpackedKernel { root: string; release: string; vmlinuz: string; modulesDir: string }

/** dpkg -x the package into `dir` and run depmod there. */
export async function unpackKernel(pkg: KernelPackage, dir: string): Promise<UnpackedKernel> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await run('dpkg', ['-x', pkg.deb, dir], { code: 'HYLICS_ERR_MICROVM_IMAGE_BUILD' });
  const modRoot = join(dir, 'lib', 'modules');
  const releases = existsSync(modRoot) ? readdirSync(modRoot) : [];
  if (releases.length !== 1) throw new HylicsError('HYLICS_ERR_MICROVM_IMAGE_BUILD', `expected one kernel release in ${pkg.deb}, found ${releases.join(', ') || 'none'}`);
  const release = releases[0]!;
  const vmlinuz = join(dir, 'boot', `vmlinuz-${release}`);
  if (!existsSync(vmlinuz)) throw new HylicsError('HYLICS_ERR_MICROVM_IMAGE_BUILD', `no boot/vmlinuz-${release} in ${pkg.deb}`);
  await run('depmod', ['-b', dir, release], { code: 'HYLICS_ERR_MICROVM_IMAGE_BUILD' });
  return { root: dir, release, vmlinuz, modulesDir: join(modRoot, release) };
}

export interface ModuleFile { name: string; path: string }

const modName = (p: string): string => p.split('/').pop()!.replace(/\.ko(\.[a-z]+)?$/, '').replace(/-/g, '_');

/**
 * The closure of `wanted` over modules.dep, ordered so that every module comes after its dependencies
 * (insmod cannot resolve dependencies itself).
 */
export async function moduleClosure(
  modulesDir: string,
  wanted: string[],
  optional: string[] = [],
): Promise<ModuleFile[]> {
  const dep = await readFile(join(modulesDir, 'modules.dep'), 'utf8');
  const deps = new Map<string, { path: string; deps: string[] }>();
  for (const line of dep.split('\n')) {
    const i = line.indexOf(':');
    if (i < 0) continue;
    const path = line.slice(0, i).trim();
    const d = line
      .slice(i + 1)
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(modName);
    deps.set(modName(path), { path, deps: d });
  }
  let builtin = '';
  try {
    builtin = await readFile(join(modulesDir, 'modules.builtin'), 'utf8');
  } catch {
    /* older packages */
  }
  const builtins = new Set(builtin.split('\n').filter(Boolean).map(modName));
  const out: ModuleFile[] = [];
  const seen = new Set<string>();
  const visit = (m: string, required: boolean, chain: string[]): void => {
    if (seen.has(m)) return;
    const entry = deps.get(m);
    if (!entry) {
      if (builtins.has(m)) return; // built into the kernel: nothing to load
      if (required)
        throw new HylicsError(
          'HYLICS_ERR_MICROVM_IMAGE_BUILD',
          `kernel module ${m} not found (needed by ${chain.join(' <- ') || 'the guest'})`,
        );
      return;
    }
    seen.add(m);
    for (const d of entry.deps) visit(d, true, [m, ...chain]);
    out.push({ name: m, path: join(modulesDir, entry.path) });
  };
  for (const m of wanted) visit(m, true, []);
  for (const m of optional) visit(m, false, []);
  return out;
}
