// Frame layer of the control channel (docs/protocol.md §Framing). Pure: bytes in, frames/errors out.
//
//   header (10 bytes, big endian): length u32 | request id u32 | type u8 | flags u8, then `length` payload bytes.
//
// A resync marker (8 bytes, containing 0xFF/0xFE, which never occur in UTF-8 JSON and whose first 4 bytes read as
// a length far above any cap) precedes every hello and may appear between any two frames. After an error the
// decoder "hunts": it discards bytes until the next marker. This is what lets a virtio-serial port, which cannot be
// closed and reopened like a socket, drop stale bytes of a previous agent or daemon (qemu-ga's guest-sync-delimited).
import { HylicsError } from '../errors/index.js';
import { MiB } from '../units.js';

export const HEADER_BYTES = 10;
const EMPTY = Buffer.alloc(0);
export const MARKER = Uint8Array.of(0xff, 0xfe, 0x48, 0x59, 0x4c, 0x53, 0xfe, 0xff); // ÿþHYLSþÿ
/** Default hard cap on a frame's payload. Large data never goes through the channel (it goes through the share). */
export const DEFAULT_MAX_PAYLOAD = MiB;

export const FrameType = {
  HELLO: 1,
  HELLO_ACK: 2,
  REQUEST: 3,
  REPLY: 4,
  ERROR: 5,
  EVENT: 6,
  PING: 7,
  PONG: 8,
} as const;
export type FrameTypeCode = (typeof FrameType)[keyof typeof FrameType];
const TYPE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(FrameType).map(([k, v]) => [v, k]));
export function frameTypeName(t: number): string {
  return TYPE_NAMES[t] ?? `unknown(${t})`;
}
export function isFrameType(t: number): t is FrameTypeCode {
  return TYPE_NAMES[t] !== undefined;
}

export interface Frame {
  id: number;
  type: FrameTypeCode;
  flags: number;
  payload: Uint8Array;
}

export function encodeFrame(
  frame: { id: number; type: number; flags?: number; payload: Uint8Array },
  maxPayload = DEFAULT_MAX_PAYLOAD,
): Uint8Array {
  checkFrame(frame.id, frame.payload.length, maxPayload);
  const out = Buffer.allocUnsafeSlow(HEADER_BYTES + frame.payload.length); // its own ArrayBuffer (callers use .buffer)
  writeHeader(out, 0, frame.id, frame.type, frame.flags ?? 0, frame.payload.length);
  out.set(frame.payload, HEADER_BYTES);
  return out;
}

/** Throws FRAME_TOO_LARGE (payload above the cap) or INVALID_ARGUMENT (id not a u32). */
export function checkFrame(id: number, payloadBytes: number, maxPayload = DEFAULT_MAX_PAYLOAD): void {
  if (payloadBytes > maxPayload) {
    throw new HylicsError(
      'HYLICS_ERR_CHANNEL_FRAME_TOO_LARGE',
      `frame payload of ${payloadBytes} bytes exceeds the cap of ${maxPayload}`,
      { size: payloadBytes, max: maxPayload },
    );
  }
  if (!Number.isInteger(id) || id < 0 || id > 0xffffffff)
    throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `frame id ${id} is not a u32`);
}

/** The 10-byte header at `at` (the caller checked id and length with checkFrame). */
export function writeHeader(
  out: Buffer, at: number, id: number, type: number, flags: number, payloadBytes: number,
): void {
  out.writeUInt32BE(payloadBytes, at);
  out.writeUInt32BE(id >>> 0, at + 4);
  out[at + 8] = type;
  out[at + 9] = flags;
}

export type DecodeEvent =
  | { kind: 'frame'; frame: Frame }
  /** A framing error; the decoder has already entered hunt mode (or dropped up to a marker). */
  | { kind: 'error'; error: HylicsError }
  /** A marker was found; `discarded` bytes before it were dropped (stale or garbage). */
  | { kind: 'sync'; discarded: number };

export interface FrameDecoderOptions {
  maxPayload?: number;
  /** Start in hunt mode: ignore everything until the first marker (the default; every sender starts with one). */
  hunting?: boolean;
}

function indexOfMarker(buf: Buffer, from: number, to: number = buf.length): number {
  const last = to - MARKER.length;
  // Buffer#indexOf is memchr: a JS loop over every byte of a 64 KiB state cost ~7 % of a guest's CPU per handoff
  for (let i = Math.max(0, from); i <= last; i++) {
    i = buf.indexOf(0xff, i);
    if (i < 0 || i > last) return -1;
    let j = 1;
    while (j < MARKER.length && buf[i + j] === MARKER[j]) j++;
    if (j === MARKER.length) return i;
  }
  return -1;
}

/** Length of the longest suffix of buf[0..len) that is a proper prefix of MARKER (bytes to keep while hunting). */
function markerPrefixSuffix(buf: Uint8Array, len: number): number {
  for (let k = Math.min(MARKER.length - 1, len); k > 0; k--) {
    let ok = true;
    for (let j = 0; j < k; j++) if (buf[len - k + j] !== MARKER[j]) { ok = false; break; }
    if (ok) return k;
  }
  return 0;
}

/**
 * Streaming decoder: push() any chunking of the byte stream, get frames, errors and sync points in order.
 * Never throws on input; bounded memory (at most header + maxPayload buffered).
 */
export class FrameDecoder {
  readonly maxPayload: number;
  private buf: Buffer = EMPTY;
  /** Chunks received while a frame's payload is incomplete (joined once it is: no copy per chunk). */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Bytes the current frame needs before it is worth decoding again (0: decode at once). */
  private need = 0;
  private huntingMode: boolean;
  /** Bytes dropped while hunting since the last sync (reported with the next sync event). */
  private dropped = 0;
  /** How far into the current frame's payload we already scanned for a marker (avoid quadratic rescans). */
  private scanned = 0;
  /** Totals, for logs and metrics. */
  stats = { frames: 0, errors: 0, discardedBytes: 0 };

  constructor(opts: FrameDecoderOptions = {}) {
    this.maxPayload = opts.maxPayload ?? DEFAULT_MAX_PAYLOAD;
    this.huntingMode = opts.hunting ?? true;
  }

  get hunting(): boolean {
    return this.huntingMode;
  }
  get buffered(): number {
    return this.buf.length + this.pendingBytes;
  }

  /** Drop what is buffered and discard input until the next marker. */
  resync(): void {
    this.join();
    this.dropped += this.buf.length;
    this.stats.discardedBytes += this.buf.length;
    this.buf = EMPTY;
    this.huntingMode = true;
    this.scanned = 0;
    this.need = 0;
  }

  push(chunk: Uint8Array): DecodeEvent[] {
    const out: DecodeEvent[] = [];
    if (chunk.length > 0) {
      const c = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      if (this.buf.length === 0) this.buf = c;
      else {
        this.pending.push(c);
        this.pendingBytes += c.length;
        // the rest of a long frame's payload: keep the chunks until it is complete (a marker inside it is
        // still found: the scan below resumes where it stopped), instead of copying the buffer at every chunk
        if (this.buf.length + this.pendingBytes < this.need && c.indexOf(0xff) < 0) return out;
        this.join();
      }
    }
    this.need = 0;
    for (;;) {
      if (this.huntingMode) {
        const i = indexOfMarker(this.buf, 0);
        if (i < 0) {
          const keep = markerPrefixSuffix(this.buf, this.buf.length);
          this.drop(this.buf.length - keep, true);
          return out;
        }
        this.drop(i, true);
        this.buf = this.buf.subarray(MARKER.length);
        this.huntingMode = false;
        this.scanned = 0;
        out.push({ kind: 'sync', discarded: this.dropped });
        this.dropped = 0;
        continue;
      }
      // synced: a marker or a header is expected here
      const b = this.buf;
      if (b.length > 0 && b[0] === 0xff) {
        const n = Math.min(b.length, MARKER.length);
        let prefix = true;
        for (let j = 0; j < n; j++) if (b[j] !== MARKER[j]) { prefix = false; break; }
        if (prefix) {
          if (b.length < MARKER.length) return out; // wait for the rest of the marker
          this.buf = b.subarray(MARKER.length);
          out.push({ kind: 'sync', discarded: 0 });
          continue;
        }
      }
      if (b.length < HEADER_BYTES) return out;
      const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
      const len = dv.getUint32(0);
      const id = dv.getUint32(4);
      const type = dv.getUint8(8);
      const flags = dv.getUint8(9);
      if (len > this.maxPayload) {
        this.fail(out, new HylicsError('HYLICS_ERR_CHANNEL_FRAME_TOO_LARGE', `frame declares ${len} payload bytes, above the cap of ${this.maxPayload}`, { size: len, max: this.maxPayload, id }));
        continue;
      }
      if (!isFrameType(type)) {
        this.fail(out, new HylicsError('HYLICS_ERR_CHANNEL_UNKNOWN_TYPE', `frame type ${type} is not defined by this protocol version`, { type, id }));
        continue;
      }
      const end = HEADER_BYTES + len;
      const avail = Math.min(b.length, end);
      // A marker inside a payload (or straddling its end) means the frame was cut short by a restart of the
      // sender: no valid payload (UTF-8 JSON) can contain 0xFF, so drop the partial frame, resume at the marker.
      const m = indexOfMarker(
        b,
        HEADER_BYTES + Math.max(0, this.scanned - (MARKER.length - 1)),
        Math.min(b.length, end + MARKER.length - 1),
      );
      if (m >= 0) {
        this.stats.errors++;
        this.stats.discardedBytes += m;
        out.push({ kind: 'error', error: new HylicsError('HYLICS_ERR_CHANNEL_TRUNCATED', `frame ${id} (${frameTypeName(type)}) was cut short by a resync marker after ${m - HEADER_BYTES} of ${len} payload bytes`, { id, type, expected: len, got: m - HEADER_BYTES }) });
        this.buf = b.subarray(m);
        this.scanned = 0;
        continue;
      }
      this.scanned = avail - HEADER_BYTES;
      if (b.length < end) {
        this.need = end;
        return out;
      }
      // the payload ends with the start of a marker: wait for the bytes that decide it
      const k = markerPrefixSuffix(b, end);
      if (k > 0 && end - k >= HEADER_BYTES && b.length < end + MARKER.length - k) return out;
      // copy: callers may keep it (Buffer#slice would be a view)
      const payload = Uint8Array.prototype.slice.call(b, HEADER_BYTES, HEADER_BYTES + len);
      this.buf = b.subarray(HEADER_BYTES + len);
      this.scanned = 0;
      this.stats.frames++;
      out.push({ kind: 'frame', frame: { id, type, flags, payload } });
    }
  }

  /** The stream ended: anything buffered in synced mode is a truncated frame. */
  end(): DecodeEvent[] {
    const out: DecodeEvent[] = [];
    this.join();
    if (!this.huntingMode && this.buf.length > 0) {
      const n = this.buf.length;
      this.fail(out, new HylicsError('HYLICS_ERR_CHANNEL_TRUNCATED', `stream ended inside a frame (${n} bytes buffered)`, { buffered: n }), n);
    }
    this.buf = EMPTY;
    return out;
  }

  private join(): void {
    if (this.pending.length === 0) return;
    this.buf = Buffer.concat([this.buf, ...this.pending], this.buf.length + this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
  }

  /** Report an error and hunt from just after the bad header: bytes already buffered behind it may hold a marker. */
  private fail(out: DecodeEvent[], error: HylicsError, consumed = HEADER_BYTES): void {
    this.stats.errors++;
    out.push({ kind: 'error', error });
    this.drop(Math.min(consumed, this.buf.length), true);
    this.huntingMode = true;
    this.scanned = 0;
    this.need = 0;
  }

  private drop(n: number, hunting: boolean): void {
    if (n <= 0) return;
    this.buf = this.buf.subarray(n);
    if (hunting) this.dropped += n;
    this.stats.discardedBytes += n;
  }
}
