// The controller's part of the command API (#9): settings, views, the decision log and the profile, as TypeBox
// schemas shared by the HTTP routes, the OpenAPI document and the daemon. Shapes as in /work/CONTRACTS.md.
import { Type, type Static } from '@sinclair/typebox';
import { SizeInput } from './api.js';

export const CONTROL_SCHEMES = ['improved', 'aq', 'adaptive', 'queue', 'static', 'off'] as const;
export type ControlScheme = (typeof CONTROL_SCHEMES)[number];

export const DurationInput = Type.Union([Type.String({ minLength: 1, maxLength: 32 }), Type.Number({ exclusiveMinimum: 0 })], { description: 'milliseconds, or a duration such as 500ms / 10s / 4m' });

// scheme is a free string here so that an unknown one gets HYLICS_ERR_CONTROL_INVALID_PARAM naming the choices
export const ControlBody = Type.Object({
  scheme: Type.Optional(Type.String({ maxLength: 32, description: `one of ${CONTROL_SCHEMES.join(', ')} (default improved)` })),
  slo: DurationInput,
  task: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'the task whose response time is regulated (default: all tasks of the guest)' })),
  min: Type.Optional(SizeInput),
  max: Type.Optional(SizeInput),
  intervalMin: Type.Optional(DurationInput),
  intervalMax: Type.Optional(DurationInput),
}, { additionalProperties: false });
export type ControlBody = Static<typeof ControlBody>;

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);

export const DecisionAction = Type.Union(['grow', 'shrink', 'hold', 'clamped', 'refused'].map((a) => Type.Literal(a)));

export const DecisionEntry = Type.Object({
  t: Type.Number({ description: 'epoch ms' }),
  lambda: Type.Number({ description: 'arrival rate (1/s), Algorithm 1 estimator' }),
  responseMeanMs: Nullable(Type.Number()),
  p95Ms: Nullable(Type.Number()),
  tasks: Type.Integer({ description: 'tasks completed in the interval' }),
  sizeBytes: Type.Integer({ description: 'share size before the decision' }),
  targetBytes: Type.Integer({ description: 'what the controller asked for' }),
  appliedBytes: Type.Integer({ description: 'share size after the decision' }),
  predictedMs: Nullable(Type.Number({ description: 'model prediction of the mean response time at the applied size' })),
  intervalMs: Type.Number({ description: 'time until the next decision' }),
  action: DecisionAction,
  reason: Type.String(),
});
export type DecisionEntry = Static<typeof DecisionEntry>;

export const ServiceModelView = Type.Object({ a: Type.Number(), b: Type.Number(), c: Type.Number() }, { description: 'E[X|m] = a + b/(m + c), seconds, m in MiB' });

export const ControlView = Type.Object({
  guest: Type.String(),
  scheme: Type.String(),
  sloMs: Type.Number(),
  task: Nullable(Type.String()),
  minBytes: Type.Integer(),
  maxBytes: Type.Integer(),
  intervalMs: Type.Number({ description: 'the current control interval' }),
  intervalMinMs: Type.Number(),
  intervalMaxMs: Type.Number(),
  nextDecisionAt: Nullable(Type.Number({ description: 'epoch ms' })),
  calibrated: Type.Boolean(),
  model: ServiceModelView,
  modelSource: Type.String({ description: 'calibrated (hylics control calibrate) or provisional (scaled to the SLO, corrected online)' }),
  budgetBytes: Nullable(Type.Integer({ description: 'the host share budget (hylics daemon --share-budget), null without one' })),
  lastDecision: Nullable(DecisionEntry),
});
export type ControlView = Static<typeof ControlView>;

export const ProfilePoint = Type.Object({
  t: Type.Number(),
  lambda: Type.Number(),
  responseMeanMs: Nullable(Type.Number()),
  p95Ms: Nullable(Type.Number()),
  tasks: Type.Integer(),
  sizeBytes: Type.Integer(),
  usedBytes: Type.Integer(),
  freeBytes: Type.Integer(),
  hitRatio: Nullable(Type.Number()),
  evictions: Type.Integer(),
  promotions: Type.Integer(),
  cpuSeconds: Nullable(Type.Number()),
});
export type ProfilePoint = Static<typeof ProfilePoint>;

export const CalibrateBody = Type.Object({
  task: Type.String({ minLength: 1, maxLength: 64 }),
  argv: Type.Array(Type.String({ maxLength: 65536 }), { minItems: 1, maxItems: 1024 }),
  sizes: Type.Optional(Type.Array(SizeInput, { minItems: 3, maxItems: 16 })),
  repeat: Type.Optional(Type.Integer({ minimum: 1, maximum: 20 })),
}, { additionalProperties: false });
export type CalibrateBody = Static<typeof CalibrateBody>;

export const CalibrationPoint = Type.Object({
  sizeBytes: Type.Integer(),
  runs: Type.Integer(),
  meanS: Type.Number(),
  sdS: Type.Number(),
  minS: Type.Number(),
  maxS: Type.Number(),
});
export const CalibrationResult = Type.Object({
  guest: Type.String(),
  task: Type.String(),
  points: Type.Array(CalibrationPoint),
  skipped: Type.Array(Type.Object({ sizeBytes: Type.Integer(), reason: Type.String() })),
  model: ServiceModelView,
  r2: Type.Number(),
  warnings: Type.Array(Type.String(), { description: 'what is suspect about the measurement, e.g. E[X|m] rising with the share size (then the stored model is the best fit with b >= 0)' }),
});
export type CalibrationResult = Static<typeof CalibrationResult>;

// The controller's commands, merged into the daemon's typed command table (core/api.ts CommandTypes).
declare module './api.js' {
  interface CommandTypes {
    'control.show': { args: { name: string }; result: ControlView };
    'control.set': { args: { name: string; body: ControlBody }; result: ControlView };
    'control.log': { args: { name: string; limit: number }; result: { decisions: DecisionEntry[] } };
    'control.profile': { args: { name: string; since: number }; result: { points: ProfilePoint[] } };
    'control.calibrate': { args: { name: string; body: CalibrateBody }; result: CalibrationResult };
  }
}
