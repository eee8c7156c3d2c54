// `hylics tier path|put|ls` (inside a guest): the guest's tiered store (src/guest/tier, docs/tier.md). `path`
// goes through the agent (hit/miss counted, the file may move back into the share first) and finds the file by
// itself when there is no agent; `put` and `ls` work on the tier directories directly.
import type { Command } from 'commander';
import { formatSize } from '../../core/units.js';
import { tier } from '../../guest/tier-lib.js';
import { printJson, table } from '../output.js';

const age = (ms: number): string => {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return s < 120 ? `${s}s ago` : s < 7200 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`;
};

export function register(program: Command): void {
  const t = program.command('tier').description('the guest\'s tiered store: the share (memory tier) and a directory on the guest\'s disk (disk tier)');

  t.command('path <name>')
    .description('print the path of NAME in whichever tier holds it now (a disk-tier file is moved back into the share after, in the background, when there is room; before, with the guest\'s --tier-promote sync)')
    .option('--no-promote', 'leave a disk-tier file where it is')
    .option('--json', 'print JSON instead of text')
    .action(async (name: string, o: { promote: boolean; json?: boolean }) => {
      const r = await tier.path(name, o.promote ? {} : { promote: false });
      if (o.json) printJson(r); else process.stdout.write(`${r.path}\n`);
    });

  t.command('put <name> [file]')
    .description('add or replace NAME from FILE (or stdin: - or no FILE), atomically; it lands in the share when it fits, else in the disk tier')
    .option('--json', 'print JSON instead of text')
    .action(async (name: string, file: string | undefined, o: { json?: boolean }) => {
      const e = await tier.put(name, file === undefined || file === '-' ? process.stdin : file);
      if (o.json) printJson(e); else process.stdout.write(`${e.name}: ${e.tier} tier, ${formatSize(e.sizeBytes)}\n`);
    });

  t.command('ls').alias('list')
    .description('list the store: name, tier, size, last use')
    .option('--json', 'print JSON instead of text')
    .action(async (o: { json?: boolean }) => {
      const files = (await tier.ls()).sort((a, b) => a.name.localeCompare(b.name));
      if (o.json) {
        printJson(
          files.map((f) => ({
            name: f.name,
            tier: f.tier,
            sizeBytes: f.sizeBytes,
            lastUse: new Date(f.lastUseMs).toISOString(),
            path: f.path,
          })),
        );
        return;
      }
      if (files.length === 0) { process.stdout.write('the tiered store is empty\n'); return; }
      process.stdout.write(table([['NAME', 'TIER', 'SIZE', 'LAST USE'], ...files.map((f) => [f.name, f.tier, formatSize(f.sizeBytes), age(f.lastUseMs)])]));
    });
}
