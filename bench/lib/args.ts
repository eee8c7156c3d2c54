// Command-line options and progress lines shared by the benchmarks: `--name value` with a default, and a logger
// that stamps each line with the seconds since the bench started.

import { readFileSync } from 'node:fs';

/** The leading `//` comment block of a bench's file: its description and options. */
function headerComment(file: string): string {
  const lines: string[] = [];
  for (const l of readFileSync(file, 'utf8').split('\n')) {
    if (!l.startsWith('//')) break;
    lines.push(l.replace(/^\/\/ ?/, ''));
  }
  return lines.join('\n');
}

// `--help` or `-h` on a bench without a usage text of its own prints its header comment and stops, before the
// bench starts anything: without this, `node dist/bench/closed-loop.js --help` began the 33-minute run.
// A bench whose text handles '--help' itself keeps its own answer (this module is evaluated before its body).
if (process.argv.includes('--help') || process.argv.includes('-h')) {
  const file = process.argv[1] ?? '';
  let text = '';
  try { text = readFileSync(file, 'utf8'); } catch { /* not a file: nothing to print from */ }
  if (!text.includes("'--help'")) {
    process.stdout.write(`${headerComment(file) || 'no description in this bench'}\n`);
    process.exit(0);
  }
}

/** The string after `--name` on the command line, or `def`. */
export function argStr(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def;
}

/** The number after `--name` on the command line, or `def`. */
export function arg(name: string, def: number): number {
  return Number(argStr(name, String(def)));
}

/** `[name   12.3s] message` lines on stdout. */
export function benchLog(name: string): (m: string) => void {
  const t0 = Date.now();
  return (m) => { process.stdout.write(`[${name} ${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${m}\n`); };
}
