// Command-line options and progress lines shared by the benchmarks: `--name value` with a default, and a logger
// that stamps each line with the seconds since the bench started.

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
