// Text lines from a byte stream (a child's stdout, a socket): each whole line once, without its '\n'.
import type { Readable } from 'node:stream';

export function onLines(stream: Readable, onLine: (line: string) => void): void {
  let buf = '';
  stream.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      onLine(line);
    }
  });
}
