// The op and event registry: the extension point of the control channel. Each area describes its operations in
// src/core/protocol/ops/<area>.ts with defineOp()/defineEvent() and registers them on OPS at import time; the RPC
// peer checks every request's params and every reply's result against these schemas, on both ends.
//
// Typing: augment OpTypes / EventTypes from your area file so request('x', ...) is typed end to end:
//   declare module '../registry.js' { interface OpTypes { 'module.start': { params: P; result: R } } }
import type { Static, TSchema } from '@sinclair/typebox';
import { HylicsError } from '../errors/index.js';
import { check, compile } from './validate.js';

/**
 * Who serves the op: 'guest' = host calls the guest agent; 'host' = guest (agent or app via the agent) calls the host.
 */
export type OpServer = 'guest' | 'host' | 'agent';

export interface OpDef<P extends TSchema = TSchema, R extends TSchema = TSchema> {
  name: string;
  /** Which end serves it. The agent forwards app requests for 'host' ops to the host. */
  server: OpServer;
  params: P;
  result: R;
  /** Replies are cached by (op, request id, params) so a retry with the same id runs it once. */
  idempotent?: boolean;
  /** One sentence for docs/protocol.md. */
  doc: string;
}

export interface EventDef<D extends TSchema = TSchema> {
  name: string;
  /** Which end emits it. */
  from: 'guest' | 'host' | 'agent';
  data: D;
  doc: string;
}

// Filled by declaration merging from each area's ops file (see the top of this file), hence empty here.
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface OpTypes {}
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface EventTypes {}
export type ParamsOf<K extends string> = K extends keyof OpTypes
  ? OpTypes[K] extends { params: infer P }
    ? P
    : unknown
  : unknown;
export type ResultOf<K extends string> = K extends keyof OpTypes
  ? OpTypes[K] extends { result: infer R }
    ? R
    : unknown
  : unknown;
export type EventDataOf<K extends string> = K extends keyof EventTypes ? EventTypes[K] : unknown;

export function defineOp<P extends TSchema, R extends TSchema>(
  def: OpDef<P, R>,
): OpDef<P, R> & { _p?: Static<P>; _r?: Static<R> } {
  return def;
}
export function defineEvent<D extends TSchema>(def: EventDef<D>): EventDef<D> {
  return def;
}

const NAME_RE = /^[a-z][a-z0-9_.-]{0,63}$/;

/** Add `d` under its name, which must match NAME_RE; the same object again is a no-op, another one throws. */
function addNamed<D extends { name: string }>(map: Map<string, D>, kind: 'op' | 'event', d: D): void {
  if (!NAME_RE.test(d.name)) {
    throw new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `${kind} name ${JSON.stringify(d.name)} must match ${NAME_RE}`);
  }
  const had = map.get(d.name);
  if (had && had !== d) throw new HylicsError('HYLICS_ERR_CONFLICT', `${kind} ${d.name} is already registered`);
  map.set(d.name, d);
}

export class OpRegistry {
  private readonly ops = new Map<string, OpDef>();
  private readonly events = new Map<string, EventDef>();

  /** Register ops (idempotent for the same definition object; a different definition under a taken name throws). */
  register(...defs: OpDef[]): this {
    // schemas compile on first use (check() caches them): compiling every op at import doubled the start-up
    // of each process that loads the protocol (the agent, the in-guest hylics), ~10 s per process under TCG;
    // compileAll() checks them all at once (tests)
    for (const d of defs) addNamed(this.ops, 'op', d);
    return this;
  }
  registerEvent(...defs: EventDef[]): this {
    for (const d of defs) addNamed(this.events, 'event', d);
    return this;
  }
  /** Compile every registered schema now (throws on an invalid one). */
  compileAll(): number {
    let n = 0;
    for (const d of this.ops.values()) { compile(d.params); compile(d.result); n += 2; }
    for (const d of this.events.values()) { compile(d.data); n++; }
    return n;
  }
  op(name: string): OpDef | undefined {
    return this.ops.get(name);
  }
  event(name: string): EventDef | undefined {
    return this.events.get(name);
  }
  listOps(): OpDef[] {
    return [...this.ops.values()].sort((a, b) => a.name.localeCompare(b.name));
  }
  listEvents(): EventDef[] {
    return [...this.events.values()].sort((a, b) => a.name.localeCompare(b.name));
  }
  /** Ops served by `server` (e.g. the host's default allow-list for guests = opsServedBy('host')). */
  opsServedBy(server: OpServer): string[] {
    return this.listOps().filter((d) => d.server === server).map((d) => d.name);
  }

  requireOp(name: string): OpDef {
    const d = this.ops.get(name);
    if (!d) throw new HylicsError('HYLICS_ERR_CHANNEL_UNKNOWN_OP', `operation ${JSON.stringify(name)} is not registered`, { op: name });
    return d;
  }
  checkParams(name: string, params: unknown): void {
    check(this.requireOp(name).params, params, `${name} params`);
  }
  checkResult(name: string, result: unknown): void {
    check(this.requireOp(name).result, result, `${name} result`);
  }
  checkEvent(name: string, data: unknown): void {
    const d = this.events.get(name);
    if (!d) throw new HylicsError('HYLICS_ERR_CHANNEL_BAD_MESSAGE', `event ${JSON.stringify(name)} is not registered`, { event: name });
    check(d.data, data, `${name} event`);
  }
}

/** The process-wide registry. The built-in ops (./ops/builtin.ts) are registered by importing ./index.ts. */
export const OPS = new OpRegistry();
