// A helper process run in a network namespace and driven by lines: the tests write commands to its stdin and wait
// for the lines it prints (no timing: each wait is for an event the helper reports).
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { createInterface } from 'node:readline';
import { NODE_BIN } from '../../src/os/self.js';

export interface LineChild {
  child: ChildProcessByStdio<Writable, Readable, null>;
  /** Every line printed so far. */
  lines: string[];
  /** The first line from index `from` on that matches `re`, once printed. */
  next: (re: RegExp, from?: number) => Promise<string>;
}

/** Run `node script ...args` in namespace `ns` (killed when the test ends). */
export function lineChild(
  t: { after: (fn: () => unknown) => void }, ns: string, script: string, args: string[],
): LineChild {
  const child = spawn('ip', ['netns', 'exec', ns, NODE_BIN, script, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.after(() => { child.stdin.destroy(); child.stdout.destroy(); child.kill('SIGKILL'); });
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  createInterface({ input: child.stdout }).on('line', (l) => { lines.push(l); waiters.splice(0).forEach((w) => w()); });
  const next = async (re: RegExp, from = 0): Promise<string> => {
    for (;;) {
      const hit = lines.slice(from).find((l) => re.test(l));
      if (hit) return hit;
      await new Promise<void>((r) => waiters.push(r));
    }
  };
  return { child, lines, next };
}
