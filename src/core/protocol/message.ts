// Message layer: typed messages <-> frames. Payloads are UTF-8 JSON checked against the envelope schemas below;
// op parameters and results are checked separately against the op registry (./registry.ts) by the RPC peer.
import { Type, type Static } from '@sinclair/typebox';
import { HylicsError } from '../errors/index.js';
import { checkFrame, writeHeader, FrameType, HEADER_BYTES, MARKER, DEFAULT_MAX_PAYLOAD, type Frame } from './frame.js';
import { check, isBase64 } from './validate.js';

export const PROTOCOL_VERSION = 1;

const Name = Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-z][a-z0-9_.-]*$' });

export const HelloSchema = Type.Object({
  /** Protocol version; both ends must be equal (docs/protocol.md §Versioning). */
  version: Type.Integer({ minimum: 0, maximum: 65535 }),
  role: Type.Union([Type.Literal('host'), Type.Literal('guest'), Type.Literal('agent'), Type.Literal('app')]),
  /** Random per connection (hex); a HELLO_ACK echoes it so a late ack of an older hello is ignored. */
  nonce: Type.String({ minLength: 8, maxLength: 64, pattern: '^[0-9a-f]+$' }),
  /** Ops this end serves plus feature flags ("feature:..."); informational, the allow-list is what is enforced. */
  caps: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 256 }),
  maxPayload: Type.Integer({ minimum: 1024, maximum: 0xffffffff }),
  /** Self-declared name: logged only. The host identifies a guest by the socket it speaks on, never by this. */
  name: Type.Optional(Type.String({ maxLength: 64 })),
  software: Type.Optional(Type.String({ maxLength: 128 })),
  /** Only in HELLO_ACK: the nonce of the hello it answers. */
  echo: Type.Optional(Type.String({ maxLength: 64 })),
});
export type Hello = Static<typeof HelloSchema>;

export const RequestSchema = Type.Object({
  op: Name,
  params: Type.Optional(Type.Unknown()),
  /** Milliseconds the caller will wait (relative: host and guest clocks differ). The handler gets an AbortSignal. */
  deadlineMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 24 * 3600 * 1000 })),
});
export const ReplySchema = Type.Object({ result: Type.Optional(Type.Unknown()) });
export const ErrorSchema = Type.Object({
  code: Type.String({ maxLength: 64 }),
  message: Type.String({ maxLength: 4096 }),
  details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
});
export const EventSchema = Type.Object({ event: Name, data: Type.Optional(Type.Unknown()) });
export const PingSchema = Type.Object({ t: Type.Optional(Type.Number()) });

export type WireError = Static<typeof ErrorSchema>;

export type Message =
  | { type: 'hello'; id: number; hello: Hello }
  | { type: 'hello-ack'; id: number; hello: Hello }
  | { type: 'request'; id: number; op: string; params: unknown; deadlineMs?: number }
  | { type: 'reply'; id: number; result: unknown }
  | { type: 'error'; id: number; error: WireError }
  | { type: 'event'; id: number; event: string; data: unknown }
  | { type: 'ping'; id: number; t?: number }
  | { type: 'pong'; id: number; t?: number };

const dec = new TextDecoder('utf-8', { fatal: true });

function body(m: Message): [number, unknown] {
  switch (m.type) {
    case 'hello': return [FrameType.HELLO, m.hello];
    case 'hello-ack': return [FrameType.HELLO_ACK, m.hello];
    case 'request': return [FrameType.REQUEST, m.deadlineMs === undefined ? { op: m.op, params: m.params } : { op: m.op, params: m.params, deadlineMs: m.deadlineMs }];
    case 'reply': return [FrameType.REPLY, { result: m.result }];
    case 'error': return [FrameType.ERROR, m.error];
    case 'event': return [FrameType.EVENT, { event: m.event, data: m.data }];
    case 'ping': return [FrameType.PING, { t: m.t }];
    case 'pong': return [FrameType.PONG, { t: m.t }];
  }
}

/** Bytes of one message. Hellos (and acks) are preceded by the resync marker. Throws FRAME_TOO_LARGE. */
export function encodeMessage(m: Message, maxPayload = DEFAULT_MAX_PAYLOAD): Uint8Array {
  const [type, b] = body(m);
  const parts = jsonParts(b);
  let len = 0;
  for (let i = 0; i < parts.length; i++) len += i % 2 === 0 ? Buffer.byteLength(parts[i]!) : parts[i]!.length + 2;
  checkFrame(m.id, len, maxPayload);
  const hello = type === FrameType.HELLO || type === FrameType.HELLO_ACK;
  const at = hello ? MARKER.length : 0;
  // one allocation, the JSON written straight into it (TextEncoder and a frame copy were two more of 64 KiB states)
  const out = Buffer.allocUnsafe(at + HEADER_BYTES + len);
  if (hello) out.set(MARKER, 0);
  writeHeader(out, at, m.id, type, 0, len);
  let o = at + HEADER_BYTES;
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    if (i % 2 === 0) o += out.write(p, o, 'utf8');
    else {
      out[o++] = 0x22;
      o += out.write(p, o, 'latin1');
      out[o++] = 0x22;
    }
  }
  return out;
}

/** Strings at least this long that are canonical base64 skip JSON.stringify's escaping (see jsonParts). */
export const SPLICE_MIN_CHARS = 4096;
/** Marks a spliced string in the skeleton (followed by its index). A data string that looks like one turns
 *  splicing off for that message. */
const SPLICE_MARK = '\u0000hylics-splice:';
const SPLICE_JSON = JSON.stringify(SPLICE_MARK).slice(0, -1);

/**
 * JSON text of `b` as alternating parts: JSON text, then a string's raw characters (to be written between quotes),
 * then JSON text... The same text JSON.stringify(b) gives. Long canonical base64 strings (a TcpState's queues:
 * up to 64 KiB of a handed-back send queue) are not escaped character by character: JSON.stringify spent ~0.3 ms
 * per 87 KiB string; checking one is canonical base64 (isBase64: only [A-Za-z0-9+/=], nothing to escape) costs a
 * fraction of that.
 */
function jsonParts(b: unknown): string[] {
  const spliced: string[] = [];
  const skeleton = extractLong(b, spliced, 0);
  const json = JSON.stringify(skeleton) ?? 'null';
  if (spliced.length === 0) return [json];
  const pieces = json.split(SPLICE_JSON);
  // a string of the data that reads like a marker: no splicing (the plain text is always right)
  if (pieces.length !== spliced.length + 1) return [JSON.stringify(b)];
  const parts: string[] = [pieces[0]!];
  for (let i = 1; i < pieces.length; i++) {
    const p = pieces[i]!;
    const q = p.indexOf('"');
    const s = spliced[Number(p.slice(0, q))];
    if (q < 1 || s === undefined) return [JSON.stringify(b)];
    parts.push(s, p.slice(q + 1));
  }
  return parts;
}

const MAX_SPLICE_DEPTH = 8;

/** `v` with its long canonical base64 strings replaced by numbered markers (containers copied only when changed). */
function extractLong(v: unknown, out: string[], depth: number): unknown {
  if (typeof v === 'string') {
    if (v.length < SPLICE_MIN_CHARS || !isBase64(v)) return v;
    out.push(v);
    return `${SPLICE_MARK}${out.length - 1}`;
  }
  if (typeof v !== 'object' || v === null || depth >= MAX_SPLICE_DEPTH) return v;
  if (Array.isArray(v)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < v.length; i++) {
      const x = v[i] as unknown;
      const y = extractLong(x, out, depth + 1);
      if (y !== x) (copy ??= v.slice())[i] = y;
    }
    return copy ?? v;
  }
  if (Object.getPrototypeOf(v) !== Object.prototype || 'toJSON' in v) return v; // only plain objects
  let copy: Record<string, unknown> | undefined;
  for (const k in v) {
    if (!Object.prototype.hasOwnProperty.call(v, k)) continue;
    const x = (v as Record<string, unknown>)[k];
    const y = extractLong(x, out, depth + 1);
    if (y !== x) (copy ??= { ...(v as Record<string, unknown>) })[k] = y;
  }
  return copy ?? v;
}

/** Parse and schema-check a frame's payload. Throws HYLICS_ERR_CHANNEL_BAD_JSON / _BAD_MESSAGE. */
export function decodeMessage(f: Frame): Message {
  let v: unknown;
  try {
    v = JSON.parse(dec.decode(f.payload));
  } catch (e) {
    throw new HylicsError('HYLICS_ERR_CHANNEL_BAD_JSON', `payload of frame ${f.id} is not UTF-8 JSON: ${(e as Error).message}`, { id: f.id, type: f.type });
  }
  const id = f.id;
  switch (f.type) {
    case FrameType.HELLO:
    case FrameType.HELLO_ACK:
      check(HelloSchema, v, 'hello');
      return { type: f.type === FrameType.HELLO ? 'hello' : 'hello-ack', id, hello: v as Hello };
    case FrameType.REQUEST: {
      check(RequestSchema, v, 'request');
      const r = v as Static<typeof RequestSchema>;
      return r.deadlineMs === undefined ? { type: 'request', id, op: r.op, params: r.params } : { type: 'request', id, op: r.op, params: r.params, deadlineMs: r.deadlineMs };
    }
    case FrameType.REPLY:
      check(ReplySchema, v, 'reply');
      return { type: 'reply', id, result: (v as { result?: unknown }).result };
    case FrameType.ERROR:
      check(ErrorSchema, v, 'error');
      return { type: 'error', id, error: v as WireError };
    case FrameType.EVENT: {
      check(EventSchema, v, 'event');
      const e = v as Static<typeof EventSchema>;
      return { type: 'event', id, event: e.event, data: e.data };
    }
    case FrameType.PING:
    case FrameType.PONG: {
      check(PingSchema, v, 'ping');
      const t = (v as { t?: number }).t;
      return t === undefined ? { type: f.type === FrameType.PING ? 'ping' : 'pong', id } : { type: f.type === FrameType.PING ? 'ping' : 'pong', id, t };
    }
  }
}

/** A HylicsError (or anything thrown) as the ERROR payload. */
export function errorToWire(e: unknown): WireError {
  if (e instanceof HylicsError) return e.toJSON() as WireError;
  return { code: 'HYLICS_ERR_INTERNAL', message: e instanceof Error ? e.message : String(e) };
}
export function wireToError(w: WireError): HylicsError {
  return HylicsError.fromJSON(w);
}
