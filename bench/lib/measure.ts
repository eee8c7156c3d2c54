// Small measurement helpers shared by the benchmarks that run real guests.
import { existsSync, readFileSync } from 'node:fs';

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** CPU seconds a guest's cgroup (path relative to the hierarchy root) has used so far: v1 cpuacct or v2 cpu.stat. */
export function cgroupCpuSeconds(cgroup: string): number {
  const v1 = `/sys/fs/cgroup/cpuacct/${cgroup}/cpuacct.usage`;
  if (existsSync(v1)) return Number(readFileSync(v1, 'utf8')) / 1e9;
  const v2 = `/sys/fs/cgroup/${cgroup}/cpu.stat`;
  if (existsSync(v2)) return Number(/usage_usec (\d+)/.exec(readFileSync(v2, 'utf8'))?.[1] ?? 0) / 1e6;
  return NaN;
}
