// Ops of the network-offload modules on the control channel: a guest (its agent, or an app through the agent)
// asks the host to start, list and stop middleware modules serving its own share. The host binds every request
// to the guest the channel belongs to, so a guest can only ever reach its own modules, share and address.
import { Type, type Static } from '@sinclair/typebox';
import { OPS, defineEvent, defineOp } from '../registry.js';

export const ModuleStartParams = Type.Object({
  kind: Type.Union([Type.Literal('http'), Type.Literal('stream')]),
  /** Directory inside the guest's share (relative to its root). */
  root: Type.String({ maxLength: 4096 }),
  /** Port on the guest's own address. */
  port: Type.Integer({ minimum: 1, maximum: 65535 }),
  hostPort: Type.Optional(Type.Integer({ minimum: 1024, maximum: 65535 })),
}, { additionalProperties: false });

/**
 * The guest's module engine as the host reports it with each module (host/modules guest-engine.ts EngineView): the
 * server, why (module-engine auto: a stream module, or the mean response size of the guest's recent traffic), its
 * switches, and under auto the traffic window the choice sees.
 */
export const ModuleEngineWire = Type.Object({
  kind: Type.Optional(Type.String({ maxLength: 16, description: 'nginx or lighttpd: the server running the guest\'s modules now' })),
  setting: Type.String({ maxLength: 16, description: 'the daemon\'s module-engine setting: auto, nginx or lighttpd' }),
  reason: Type.String({ maxLength: 1024, description: 'why this server' }),
  switches: Type.Integer({ minimum: 0, description: 'switches of the guest\'s engine since its first module started (each restarts its modules)' }),
  switchedAt: Type.Optional(Type.String({ maxLength: 64, description: 'when the last switch was (ISO 8601)' })),
  traffic: Type.Optional(Type.Object({
    windowSeconds: Type.Number(),
    requests: Type.Integer({ minimum: 0 }),
    bytes: Type.Number({ minimum: 0 }),
    meanBytes: Type.Number({ minimum: 0, description: 'body bytes sent per request over the window' }),
    evidence: Type.Boolean({ description: 'enough requests in the window, watched long enough, for a decision' }),
    minRequests: Type.Integer({ minimum: 0, description: 'requests the window must hold for evidence' }),
    waitSeconds: Type.Number({ minimum: 0, description: 'seconds until the guest was watched long enough for evidence' }),
    wants: Type.String({ maxLength: 16, description: 'the server the traffic calls for (with hysteresis)' }),
    settled: Type.Boolean({ description: 'enough evidence and no switch waiting: the engine is the one auto settles on' }),
  }, { additionalProperties: true })),
}, { additionalProperties: true });

/** What the host says of a module (ModuleInfo of host/modules); open so the host may add facts. */
export const ModuleInfoWire = Type.Object({
  id: Type.String({ maxLength: 64 }),
  kind: Type.String({ maxLength: 16 }),
  root: Type.String({ maxLength: 4096 }),
  port: Type.Integer(),
  urls: Type.Array(Type.String({ maxLength: 512 }), { maxItems: 16 }),
  engine: Type.Optional(ModuleEngineWire),
}, { additionalProperties: true });

export const ModuleListResult = Type.Object({ modules: Type.Array(ModuleInfoWire, { maxItems: 1024 }) });
export const ModuleStopParams = Type.Object(
  { id: Type.String({ minLength: 1, maxLength: 64 }) },
  { additionalProperties: false },
);
export const ModuleStopResult = Type.Object({ stopped: Type.String({ maxLength: 64 }) });
/**
 * Module events forwarded to the owning guest: started, stopped, stats (requests, bytes, errors, latency), error,
 * worker-restarted.
 */
export const ModuleEventData = Type.Object({ type: Type.String({ maxLength: 32 }) }, { additionalProperties: true });

export const MODULE_OPS = [
  defineOp({ name: 'module.start', server: 'host', params: ModuleStartParams, result: ModuleInfoWire, doc: 'Start an offload module (http or stream) serving a directory of the calling guest\'s share on the guest\'s own address and port.' }),
  defineOp({ name: 'module.list', server: 'host', params: Type.Object({}, { additionalProperties: false }), result: ModuleListResult, doc: 'The calling guest\'s offload modules with their URLs and totals.' }),
  defineOp({ name: 'module.stop', server: 'host', params: ModuleStopParams, result: ModuleStopResult, doc: 'Stop one of the calling guest\'s offload modules.' }),
];
export const MODULE_EVENTS = [
  defineEvent({ name: 'module.event', from: 'host', data: ModuleEventData, doc: 'What the calling guest\'s modules did: started, stopped, stats once a second (requests, bytes, errors, latency; files: the share-relative names served, missing: those answered 404, which the guest\'s tiered store counts as uses), error, worker restarted.' }),
];

OPS.register(...MODULE_OPS);
OPS.registerEvent(...MODULE_EVENTS);

declare module '../registry.js' {
  interface OpTypes {
    'module.start': { params: Static<typeof ModuleStartParams>; result: Static<typeof ModuleInfoWire> };
    'module.list': { params: Record<string, never>; result: Static<typeof ModuleListResult> };
    'module.stop': { params: Static<typeof ModuleStopParams>; result: Static<typeof ModuleStopResult> };
  }
  interface EventTypes {
    'module.event': Static<typeof ModuleEventData>;
  }
}
