// The one internal command API. The HTTP routes, the CLI (through HTTP) and the dashboard all end up as one of
// these commands, executed by the daemon's `execute(cmd)`. Schemas are TypeBox so the same definitions validate
// requests (fastify/ajv) and describe them in the OpenAPI document (docs/openapi.json).
import { Type, type Static } from '@sinclair/typebox';
import type { ParamsOf, ResultOf } from './protocol/index.js';
import { ModuleEngineWire } from './protocol/ops/modules.js';
import { SOCKET_OFFLOAD_COPIES } from './protocol/ops/offload.js';
import { KiB } from './units.js';
import { TierSettingsBody, TierSettingsView } from './tier-settings.js';

/** The channel carries stdin as base64 of at most 700 KiB: 525 KiB of bytes (checked in bytes by the daemon). */
export const EXEC_STDIN_MAX_BYTES = 525 * KiB;

// The name's rules are checked by validateGuestName (core/units) so that a bad name gets HYLICS_ERR_INVALID_NAME.
export const GuestName = Type.String({ minLength: 1, maxLength: 64, description: 'guest name: 1-32 of a-z 0-9 -, starting with a letter' });
export const SizeInput = Type.Union([Type.String({ minLength: 1, maxLength: 32 }), Type.Integer({ minimum: 1 })], { description: 'bytes, or a size such as 64M / 1.5G' });
export const DriverKind = Type.Union([Type.Literal('sandbox'), Type.Literal('microvm'), Type.Literal('libvirt')]);

export const GuestCreateBody = Type.Object({
  name: GuestName,
  driver: Type.Optional(DriverKind),
  shareSize: SizeInput,
  cpus: Type.Optional(Type.Union([Type.Number(), Type.String({ maxLength: 16 })])),
  memory: Type.Optional(SizeInput),
  tier: Type.Optional(TierSettingsBody),
}, { additionalProperties: false });
export type GuestCreateBody = Static<typeof GuestCreateBody>;

export const ShareResizeBody = Type.Object({ size: SizeInput }, { additionalProperties: false });
export type ShareResizeBody = Static<typeof ShareResizeBody>;

export const ExecBody = Type.Object({
  argv: Type.Array(Type.String({ maxLength: 65536 }), { minItems: 1, maxItems: 1024 }),
  cwd: Type.Optional(Type.String({ maxLength: 4096 })),
  stdin: Type.Optional(Type.String({ maxLength: EXEC_STDIN_MAX_BYTES, description: 'utf8 text fed to the command (at most 525 KiB)' })),
  timeoutMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 3600000 })),
}, { additionalProperties: false });
export type ExecBody = Static<typeof ExecBody>;

export const ExecResult = Type.Object({
  exitCode: Type.Union([Type.Integer(), Type.Null()]),
  signal: Type.Union([Type.String(), Type.Null()]),
  stdout: Type.String(),
  stderr: Type.String(),
  truncated: Type.Optional(Type.Boolean()),
});
export type ExecResult = Static<typeof ExecResult>;

export const ShareInfo = Type.Object({
  path: Type.String({ description: 'host path of the tmpfs' }),
  sizeBytes: Type.Integer(),
  usedBytes: Type.Integer(),
  freeBytes: Type.Integer(),
  mounted: Type.Boolean(),
});
export type ShareInfo = Static<typeof ShareInfo>;

export const TaskStats = Type.Object({
  name: Type.String(),
  count: Type.Integer(),
  failed: Type.Integer(),
  meanMs: Type.Number(),
  p95Ms: Type.Number(),
  lastMs: Type.Number(),
});
export type TaskStats = Static<typeof TaskStats>;

export const GuestStatus = Type.Union([
  Type.Literal('starting'), Type.Literal('running'), Type.Literal('stopped'), Type.Literal('failed'),
]);
export type GuestStatus = Static<typeof GuestStatus>;

/** Socket offload counters of a guest (docs/offload-socket.md). */
export const SocketOffloadView = Type.Object({
  available: Type.Boolean(),
  reason: Type.Optional(Type.String()),
  handoffs: Type.Integer(),
  bytes: Type.Integer(),
  inFlight: Type.Integer(),
  fallbacks: Type.Record(Type.String(), Type.Integer(), { description: 'sends kept in the guest, by reason' }),
  latencyMs: Type.Object({ count: Type.Integer(), p50: Type.Union([Type.Number(), Type.Null()]), p99: Type.Union([Type.Number(), Type.Null()]) }, { description: 'host-side takeover + hand-back time over the last handoffs (the descriptor copy: its checks and the file\'s open)' }),
  copy: Type.Optional(Type.Union(SOCKET_OFFLOAD_COPIES.map((c) => Type.Literal(c)), { description: 'auto: sandbox guests get the descriptor copy; repair: the TCP_REPAIR handoff only' })),
  byCopy: Type.Optional(Type.Object({ fd: Type.Integer(), repair: Type.Integer() }, { description: 'handoffs by how the host had the socket: fd (descriptor copy) or repair (TCP_REPAIR)' })),
  fdRefused: Type.Optional(Type.Record(Type.String(), Type.Integer(), { description: 'descriptor copies refused before anything was sent, by why' })),
});
export type SocketOffloadView = Static<typeof SocketOffloadView>;

export const GuestView = Type.Object({
  name: Type.String(),
  driver: DriverKind,
  status: GuestStatus,
  agentConnected: Type.Boolean(),
  cpus: Type.Number(),
  memoryBytes: Type.Integer(),
  address: Type.String({ description: "the guest's own IPv4 address" }),
  hostAddress: Type.String(),
  share: ShareInfo,
  createdAt: Type.String(),
  lastError: Type.Optional(Type.String()),
  driverInfo: Type.Record(Type.String(), Type.Unknown()),
  tasks: Type.Array(TaskStats),
  offload: Type.Optional(Type.Object({ socket: SocketOffloadView })),
  /** The guest's host-side module engine (which server, why; docs/modules.md), once the guest has started a module. */
  modules: Type.Optional(Type.Object({ engine: ModuleEngineWire })),
  tier: Type.Optional(TierSettingsView),
});
export type GuestView = Static<typeof GuestView>;

export const StatusView = Type.Object({
  version: Type.String(),
  pid: Type.Integer(),
  stateDir: Type.String(),
  uptimeSeconds: Type.Number(),
  guests: Type.Integer(),
  guestsRunning: Type.Integer(),
  shareBytesTotal: Type.Integer(),
  shareBytesUsed: Type.Integer(),
});
export type StatusView = Static<typeof StatusView>;

export const ErrorBody = Type.Object({
  error: Type.Object({
    code: Type.String(),
    message: Type.String(),
    details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  }),
});

/** A guest's module engine as the host reports it (each module's `engine`, the guest view's `modules.engine`). */
export type ModuleEngineView = Static<typeof ModuleEngineWire>;
/** A module as the host reports it (the channel op's result type, so HTTP and channel callers see one shape). */
export type ModuleInfoView = ResultOf<'module.start'>;
/** What starts a module: the channel op's params (HTTP validates with the same schema, ModuleStartParams). */
export type ModuleStartBody = ParamsOf<'module.start'>;

type NoArgs = Record<never, never>;
type Named = { name: string };

/**
 * Every operation the daemon performs on behalf of a caller, with its arguments and its result (as Firecracker's
 * VmmAction -> VmmData): `Daemon.execute(cmd)` returns `Promise<CommandResult<typeof cmd.op>>`.
 *
 * Adding a command: one entry here, then its handler in the daemon's command table (src/host/daemon.ts; the
 * compiler refuses a table without it), then its HTTP route / CLI verb. Another area may add its commands from its
 * own file by declaration merging, as channel ops do with OpTypes:
 *   declare module '../core/api.js' { interface CommandTypes { 'x.show': { args: { name: string }; result: X } } }
 */
export interface CommandTypes {
  'status': { args: NoArgs; result: StatusView };
  'guest.create': { args: { body: GuestCreateBody }; result: GuestView };
  'guest.list': { args: NoArgs; result: GuestView[] };
  'guest.show': { args: Named; result: GuestView };
  'guest.remove': { args: Named; result: { removed: string } };
  'guest.start': { args: Named; result: GuestView };
  'guest.stop': { args: Named; result: GuestView };
  'guest.exec': { args: Named & { body: ExecBody }; result: ExecResult };
  'guest.console': { args: Named & { lines: number }; result: { text: string } };
  'guest.libvirtXml': { args: Named; result: { xml: string } };
  'share.resize': { args: Named & { body: ShareResizeBody }; result: GuestView };
  'module.start': { args: Named & { body: ModuleStartBody }; result: ModuleInfoView };
  'module.list': { args: Named; result: ModuleInfoView[] };
  'module.stop': { args: Named & { id: string }; result: { stopped: string } };
}

export type CommandOp = keyof CommandTypes;
/** One command: `{ op, ...args }`. Without a type argument, the union of every command. */
export type Command<K extends CommandOp = CommandOp> = K extends CommandOp ? { op: K } & CommandTypes[K]['args'] : never;
export type CommandResult<K extends CommandOp> = CommandTypes[K]['result'];
