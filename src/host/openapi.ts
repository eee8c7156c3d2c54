// The OpenAPI document of the HTTP API, generated from the same route definitions the daemon serves.
import { pino } from 'pino';
import { HylicsError } from '../core/errors/index.js';
import { buildApi } from './http.js';
import { DaemonMetrics } from './metrics.js';

export async function openApiDocument(): Promise<unknown> {
  const app = await buildApi({
    execute: () => Promise.reject(new HylicsError('HYLICS_ERR_INTERNAL', 'document generation only')),
    metrics: new DaemonMetrics({ guestsSnapshot: async () => [] }),
  }, pino({ level: 'silent' }));
  const doc = app.swagger();
  await app.close();
  return doc;
}
