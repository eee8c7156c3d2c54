// HTTP routes of the share-size controller (shapes in /work/CONTRACTS.md, schemas in core/control-api.ts).
import { Type, type TSchema } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { GuestName, type Command } from '../../core/api.js';
import { CalibrateBody, CalibrationResult, ControlBody, ControlView, DecisionEntry, ProfilePoint } from '../../core/control-api.js';

const NameParams = Type.Object({ name: GuestName });
/** Decisions returned by default / at most by GET .../control/log. */
export const LOG_LIMIT_DEFAULT = 100;
export const LOG_LIMIT_MAX = 500;

export function registerControlRoutes(
  app: FastifyInstance,
  run: (cmd: Command) => Promise<unknown>,
  errors: Record<number, TSchema>,
): void {
  app.get<{ Params: { name: string } }>(
    '/v1/guests/:name/control',
    {
      schema: {
        summary: "The guest's share-size controller: settings, model, current interval, last decision",
        params: NameParams,
        response: { 200: ControlView, ...errors },
      },
    },
    (req) => run({ op: 'control.show', name: req.params.name }),
  );
  app.put<{ Params: { name: string }; Body: ControlBody }>(
    '/v1/guests/:name/control',
    {
      schema: {
        summary:
          "Set the guest's controller (scheme, SLO, task, share bounds, interval bounds); checked whole, persisted, the loop restarts",
        params: NameParams,
        body: ControlBody,
        response: { 200: ControlView, ...errors },
      },
    },
    (req) => run({ op: 'control.set', name: req.params.name, body: req.body }),
  );
  app.get<{ Params: { name: string }; Querystring: { limit?: number } }>(
    '/v1/guests/:name/control/log',
    {
      schema: {
        summary:
          "The controller's decisions with their inputs (λ, R, p95, m, prediction, interval, reason), oldest first",
        params: NameParams,
        querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: LOG_LIMIT_MAX })) }),
        response: { 200: Type.Object({ decisions: Type.Array(DecisionEntry) }), ...errors },
      },
    },
    (req) => run({ op: 'control.log', name: req.params.name, limit: req.query.limit ?? LOG_LIMIT_DEFAULT }),
  );
  app.get<{ Params: { name: string }; Querystring: { since?: number } }>(
    '/v1/guests/:name/profile',
    {
      schema: {
        summary:
          "The profiler's time series of the guest (bounded ring): rate, response time, share size and usage, tier hits, CPU",
        params: NameParams,
        querystring: Type.Object({ since: Type.Optional(Type.Number({ minimum: 0, description: 'epoch ms' })) }),
        response: { 200: Type.Object({ points: Type.Array(ProfilePoint) }), ...errors },
      },
    },
    (req) => run({ op: 'control.profile', name: req.params.name, since: req.query.since ?? 0 }),
  );
  app.post<{ Params: { name: string }; Body: CalibrateBody }>(
    '/v1/guests/:name/control/calibrate',
    {
      schema: {
        summary:
          'Measure E[X|m] of a task at several share sizes under light load (guest exec, repeated), fit and store the model',
        params: NameParams,
        body: CalibrateBody,
        response: { 200: CalibrationResult, ...errors },
      },
    },
    (req) => run({ op: 'control.calibrate', name: req.params.name, body: req.body }),
  );
}
