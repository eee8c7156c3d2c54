// Message layer: typed messages <-> frames. Payloads are UTF-8 JSON checked against the envelope schemas below;
// op parameters and results are checked separately against the op registry (./registry.ts) by the RPC peer.
import { Type, type Static } from '@sinclair/typebox';
import { HylicsError } from '../errors/index.js';
import { encodeFrame, FrameType, MARKER, DEFAULT_MAX_PAYLOAD, type Frame } from './frame.js';
import { check } from './validate.js';

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

const enc = new TextEncoder();
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
  const frame = encodeFrame({ id: m.id, type, payload: enc.encode(JSON.stringify(b)) }, maxPayload);
  if (type !== FrameType.HELLO && type !== FrameType.HELLO_ACK) return frame;
  const out = new Uint8Array(MARKER.length + frame.length);
  out.set(MARKER, 0);
  out.set(frame, MARKER.length);
  return out;
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
