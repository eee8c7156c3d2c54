// Built-in ops of the control channel (docs/protocol.md §Operations). Other areas add theirs in ./<area>.ts.
import { Type, type Static } from '@sinclair/typebox';
import { defineEvent, defineOp, OPS } from '../registry.js';

/** Cap on captured stdout and stderr each (before base64); keeps an exec reply well under the 1 MiB frame cap. */
export const EXEC_OUTPUT_CAP = 256 * 1024;
const Str = (max: number) => Type.String({ maxLength: max });

export const HealthParams = Type.Object({}, { additionalProperties: false });
export const HealthResult = Type.Object({
  ok: Type.Boolean(),
  /** The name the agent was started with (--name); informational. */
  name: Str(64),
  pid: Type.Integer(),
  uptimeMs: Type.Number({ minimum: 0 }),
  software: Str(128),
  /** Apps connected to the agent's local socket. */
  apps: Type.Integer({ minimum: 0 }),
  /** Task reports waiting to be sent to the host, and dropped because the queue was full. */
  queuedReports: Type.Integer({ minimum: 0 }),
  droppedReports: Type.Integer({ minimum: 0 }),
  loadavg: Type.Array(Type.Number(), { maxItems: 3 }),
  rssBytes: Type.Integer({ minimum: 0 }),
  /** Guest wall clock, epoch ms (lets the host estimate skew). */
  time: Type.Number(),
});

export const ExecParams = Type.Object({
  argv: Type.Array(Str(65536), { minItems: 1, maxItems: 4096 }),
  cwd: Type.Optional(Str(4096)),
  /** Added to (and overriding) the agent's environment. */
  env: Type.Optional(Type.Record(Type.String({ maxLength: 256, pattern: '^[^=\\u0000]+$' }), Str(65536))),
  /** Bytes for the command's stdin, base64; stdin is closed after them (empty/absent = closed at once). */
  stdin: Type.Optional(Type.String({ maxLength: 700 * 1024, contentEncoding: 'base64' })),
  /** Kill (SIGTERM, then SIGKILL 2 s later) after this long. */
  timeoutMs: Type.Integer({ minimum: 1, maximum: 24 * 3600 * 1000 }),
  /** Per-stream capture cap in bytes (default and maximum EXEC_OUTPUT_CAP). Output beyond it is read and dropped. */
  maxOutputBytes: Type.Optional(Type.Integer({ minimum: 0, maximum: EXEC_OUTPUT_CAP })),
}, { additionalProperties: false });
export const ExecResult = Type.Object({
  /** null when killed by a signal. */
  exitCode: Type.Union([Type.Integer(), Type.Null()]),
  signal: Type.Union([Str(32), Type.Null()]),
  /** stdout/stderr are always base64 (commands may print binary). */
  encoding: Type.Literal('base64'),
  stdout: Type.String({ maxLength: 4 * Math.ceil(EXEC_OUTPUT_CAP / 3) }),
  stderr: Type.String({ maxLength: 4 * Math.ceil(EXEC_OUTPUT_CAP / 3) }),
  stdoutTruncated: Type.Boolean(),
  stderrTruncated: Type.Boolean(),
  timedOut: Type.Boolean(),
  durationMs: Type.Number({ minimum: 0 }),
});

export const ShutdownParams = Type.Object({
  reason: Type.Optional(Str(256)),
}, { additionalProperties: false });
export const ShutdownResult = Type.Object({ ok: Type.Boolean() });

export const TaskEvent = Type.Object({
  kind: Type.Union([Type.Literal('start'), Type.Literal('end')]),
  /** Task kind, e.g. "compress" or "deliver". */
  name: Type.String({ minLength: 1, maxLength: 128 }),
  /** Unique per task instance within the guest (the library makes them). */
  id: Type.String({ minLength: 1, maxLength: 128 }),
  /** Guest wall clock, epoch ms. */
  startMs: Type.Number(),
  /** Only on 'end'. */
  endMs: Type.Optional(Type.Number()),
  /** Only on 'end': end - start measured with a monotonic clock. */
  responseMs: Type.Optional(Type.Number({ minimum: 0 })),
  /** Only on 'end': false when the task threw. */
  ok: Type.Optional(Type.Boolean()),
  error: Type.Optional(Str(512)),
  /** Only on 'end': which tier the task's input came from (memory = the share, disk = the guest's disk tier). */
  tier: Type.Optional(Type.Union([Type.Literal('memory'), Type.Literal('disk')])),
  /** Optional numbers the app wants profiled with the task (e.g. bytes). */
  attrs: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), Type.Number(), { maxProperties: 16 })),
}, { additionalProperties: false });
export const TaskReportParams = Type.Object({
  events: Type.Array(TaskEvent, { minItems: 1, maxItems: 1000 }),
  /** Reports the agent dropped (queue full while disconnected) since its previous report. */
  dropped: Type.Optional(Type.Integer({ minimum: 0 })),
}, { additionalProperties: false });
export const TaskReportResult = Type.Object({ accepted: Type.Integer({ minimum: 0 }) });

export const ShareInfoParams = Type.Object({}, { additionalProperties: false });
export const ShareInfoResult = Type.Object({
  sizeBytes: Type.Integer({ minimum: 0 }),
  usedBytes: Type.Integer({ minimum: 0 }),
  freeBytes: Type.Integer({ minimum: 0 }),
});

export const AgentStatusEvent = Type.Object({
  state: Type.Union([Type.Literal('ready'), Type.Literal('stopping')]),
  apps: Type.Integer({ minimum: 0 }),
});
export const ShareResizedEvent = Type.Object({ sizeBytes: Type.Integer({ minimum: 0 }) });

export type HealthResultT = Static<typeof HealthResult>;
export type ExecParamsT = Static<typeof ExecParams>;
export type ExecResultT = Static<typeof ExecResult>;
export type TaskEventT = Static<typeof TaskEvent>;
export type TaskReportParamsT = Static<typeof TaskReportParams>;
export type ShareInfoResultT = Static<typeof ShareInfoResult>;

export const BUILTIN_OPS = [
  defineOp({ name: 'health', server: 'guest', params: HealthParams, result: HealthResult, doc: 'Liveness and vital signs of the guest agent.' }),
  defineOp({ name: 'exec', server: 'guest', params: ExecParams, result: ExecResult, doc: 'Run a command in the guest (no shell), with a timeout; returns exit status and capped output.' }),
  defineOp({ name: 'shutdown', server: 'guest', params: ShutdownParams, result: ShutdownResult, doc: 'Ask the agent to flush task reports, close its sockets and exit (the guest driver stops the guest itself).' }),
  defineOp({ name: 'task.report', server: 'host', params: TaskReportParams, result: TaskReportResult, idempotent: true, doc: 'A batch of task start/end events for the host profiler (sent by the agent, queued while disconnected).' }),
  defineOp({ name: 'share.info', server: 'host', params: ShareInfoParams, result: ShareInfoResult, doc: 'Size, used and free bytes of the guest\'s share as the host sees it.' }),
];
export const BUILTIN_EVENTS = [
  defineEvent({ name: 'agent.status', from: 'agent', data: AgentStatusEvent, doc: 'The agent is ready (after each hello) or stopping.' }),
  defineEvent({ name: 'share.resized', from: 'host', data: ShareResizedEvent, doc: 'The host changed the share\'s size limit.' }),
];

OPS.register(...BUILTIN_OPS);
OPS.registerEvent(...BUILTIN_EVENTS);

declare module '../registry.js' {
  interface OpTypes {
    health: { params: Static<typeof HealthParams>; result: Static<typeof HealthResult> };
    exec: { params: Static<typeof ExecParams>; result: Static<typeof ExecResult> };
    shutdown: { params: Static<typeof ShutdownParams>; result: Static<typeof ShutdownResult> };
    'task.report': { params: Static<typeof TaskReportParams>; result: Static<typeof TaskReportResult> };
    'share.info': { params: Static<typeof ShareInfoParams>; result: Static<typeof ShareInfoResult> };
  }
  interface EventTypes {
    'agent.status': Static<typeof AgentStatusEvent>;
    'share.resized': Static<typeof ShareResizedEvent>;
  }
}
