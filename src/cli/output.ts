// Printing helpers shared by the commands: --json prints the API's JSON as is; text is for people.
import { formatSize } from '../core/units.js';
import type { GuestView } from '../core/api.js';

export function printJson(v: unknown): void {
  process.stdout.write(JSON.stringify(v, null, 2) + '\n');
}

export function table(rows: string[][]): string {
  if (rows.length === 0) return '';
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}

export function guestLine(g: GuestView): string[] {
  return [g.name, g.driver, g.status, g.agentConnected ? 'yes' : 'no', g.address, String(g.cpus), `${formatSize(g.share.usedBytes)} / ${formatSize(g.share.sizeBytes)}`];
}

export function guestDetails(g: GuestView): string {
  const lines = [
    `name:        ${g.name}`,
    `driver:      ${g.driver}`,
    `status:      ${g.status}${g.lastError ? ` (${g.lastError})` : ''}`,
    `agent:       ${g.agentConnected ? 'connected' : 'not connected'}`,
    `address:     ${g.address} (host side ${g.hostAddress})`,
    `cpus:        ${g.cpus}`,
    `memory:      ${formatSize(g.memoryBytes)}`,
    `share:       ${g.share.path}`,
    `share size:  ${formatSize(g.share.sizeBytes)}, used ${formatSize(g.share.usedBytes)}, free ${formatSize(g.share.freeBytes)}${g.share.mounted ? '' : ' (NOT MOUNTED)'}`,
    `created:     ${g.createdAt}`,
  ];
  if (g.tier) {
    const idle = g.tier.idleMs === 0 ? 'never' : `after ${g.tier.idleMs / 1000} s idle`;
    lines.push(g.tier.diskDir === null ? 'tier:        none (no tiered store)' : `tier:        disk tier ${g.tier.diskDir}, evict ${idle}, promote ${String(g.tier.promote)}`);
  }
  for (const [k, v] of Object.entries(g.driverInfo)) lines.push(`${(k + ':').padEnd(12)} ${typeof v === 'string' ? v : JSON.stringify(v)}`);
  for (const t of g.tasks) lines.push(`task ${t.name}: ${t.count} done (${t.failed} failed), mean ${t.meanMs.toFixed(1)} ms, p95 ${t.p95Ms.toFixed(1)} ms`);
  return lines.join('\n') + '\n';
}
