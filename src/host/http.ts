// The HTTP API of hylicsd (fastify: schema validation with the same TypeBox schemas as the command API, and the
// OpenAPI document generated from the routes by @fastify/swagger). It listens on a Unix socket in the state dir
// (mode 0600: only root may drive the daemon) and optionally on TCP (--listen), where every request needs the
// bearer token and an allowed Host (./api-auth.ts). Bodies are JSON only, on every listener.
import Fastify, { type FastifyInstance, type FastifyError } from 'fastify';
import swagger from '@fastify/swagger';
import { Type } from '@sinclair/typebox';
import type { Logger } from 'pino';
import {
  ErrorBody, ExecBody, ExecResult, GuestCreateBody, GuestName, GuestView, ShareResizeBody, StatusView, type Command,
  type ModuleStartBody,
} from '../core/api.js';
import { HylicsError, toHylicsError } from '../core/errors/index.js';
import { ModuleInfoWire, ModuleListResult, ModuleStartParams, ModuleStopParams, ModuleStopResult } from '../core/protocol/index.js';
import { VERSION } from '../core/version.js';
import type { DaemonMetrics } from './metrics.js';
import { dashboardHtml } from './dashboard.js';
import { requireAuth, type ApiAuth } from './api-auth.js';
import { registerControlRoutes } from './control/routes.js';
import { MiB } from '../core/units.js';

const NameParams = Type.Object({ name: GuestName });
const errors = { 400: ErrorBody, 404: ErrorBody, 409: ErrorBody, 500: ErrorBody, 503: ErrorBody, 504: ErrorBody };

/** What the API needs of the daemon: the command executor and the metrics (so the OpenAPI document can be
 * generated without a running daemon). */
export interface ApiDeps {
  execute(cmd: Command): Promise<unknown>;
  metrics: DaemonMetrics;
}

export interface ApiOptions {
  /** Token and Host checks (TCP listeners); absent on the root-only Unix socket. */
  auth?: ApiAuth;
}

export async function buildApi(daemon: ApiDeps, log: Logger, opts: ApiOptions = {}): Promise<FastifyInstance> {
  // fastify is typed per logger; the daemon only needs the base instance type
  const app = Fastify({
    // per-request logs stay out of the daemon log (info level); errors are logged by the error handler
    loggerInstance: log.child({ component: 'api' }, { level: 'warn' }),
    bodyLimit: 2 * MiB,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false } },
  });
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'hylicsd API', version: VERSION, description: 'Host daemon of Hylics: guests, shares, offload modules. Served on <state-dir>/hylicsd.sock (HTTP over a Unix socket).' },
      servers: [{ url: 'http://localhost', description: 'HTTP over the Unix socket <state-dir>/hylicsd.sock' }],
      components: { securitySchemes: { bearerToken: { type: 'http', scheme: 'bearer', description: 'Needed on TCP listeners (hylics daemon --listen), not on the root-only Unix socket: the token in <state-dir>/api-token' } } },
      // either no credentials (Unix socket) or the bearer token (TCP)
      security: [{}, { bearerToken: [] }],
    },
  });
  // JSON only: a text/plain (or form) body is what a cross-site page can post without a preflight
  app.removeContentTypeParser('text/plain');
  if (opts.auth) requireAuth(app as unknown as FastifyInstance, opts.auth);

  app.setErrorHandler((err: FastifyError | HylicsError, req, reply) => {
    let e: HylicsError;
    if (err instanceof HylicsError) e = err;
    else if ((err as FastifyError).validation) e = new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', `invalid request: ${err.message}`);
    else if ((err as FastifyError).statusCode === 415) e = new HylicsError('HYLICS_ERR_API_MEDIA_TYPE', `request bodies must be application/json (got ${JSON.stringify(req.headers['content-type'] ?? '')})`);
    else if ((err as FastifyError).statusCode && (err as FastifyError).statusCode! < 500) e = new HylicsError('HYLICS_ERR_INVALID_ARGUMENT', err.message);
    else e = toHylicsError(err);
    if (e.http >= 500) req.log.error({ err: e.toJSON() }, 'request failed');
    daemon.metrics.apiRequests.inc({ route: req.routeOptions.url ?? 'unknown', method: req.method, status: String(e.http) });
    if (e.code === 'HYLICS_ERR_API_UNAUTHORIZED') void reply.header('www-authenticate', 'Bearer realm="hylicsd"');
    void reply.status(e.http).send({ error: e.toJSON() });
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ error: new HylicsError('HYLICS_ERR_NOT_FOUND', `no route ${req.method} ${req.url}`).toJSON() });
  });
  app.addHook('onResponse', async (req, reply) => {
    if (reply.statusCode < 400) daemon.metrics.apiRequests.inc({ route: req.routeOptions.url ?? 'unknown', method: req.method, status: String(reply.statusCode) });
  });

  const run = (cmd: Command): Promise<unknown> => daemon.execute(cmd);

  app.get('/v1/status', { schema: { summary: 'Daemon status', response: { 200: StatusView } } }, () => run({ op: 'status' }));
  app.get('/v1/guests', { schema: { summary: 'List guests', response: { 200: Type.Array(GuestView) } } }, () => run({ op: 'guest.list' }));
  app.post<{ Body: GuestCreateBody }>('/v1/guests', {
    schema: { summary: 'Create and start a guest with its share', body: GuestCreateBody, response: { 201: GuestView, ...errors } },
  }, async (req, reply) => { const v = await run({ op: 'guest.create', body: req.body }); return reply.status(201).send(v); });
  app.get<{ Params: { name: string } }>('/v1/guests/:name', {
    schema: { summary: 'Show a guest, its share and task statistics', params: NameParams, response: { 200: GuestView, ...errors } },
  }, (req) => run({ op: 'guest.show', name: req.params.name }));
  app.delete<{ Params: { name: string } }>('/v1/guests/:name', {
    schema: { summary: 'Stop and remove a guest and its share', params: NameParams, response: { 200: Type.Object({ removed: Type.String() }), ...errors } },
  }, (req) => run({ op: 'guest.remove', name: req.params.name }));
  app.post<{ Params: { name: string } }>('/v1/guests/:name/start', {
    schema: { summary: 'Boot a stopped or failed guest again (share and data as they are)', params: NameParams, response: { 200: GuestView, ...errors } },
  }, (req) => run({ op: 'guest.start', name: req.params.name }));
  app.post<{ Params: { name: string } }>('/v1/guests/:name/stop', {
    schema: { summary: 'Stop a guest (agent shutdown, then ACPI / SIGTERM, then kill) and keep its share, data and disk', params: NameParams, response: { 200: GuestView, ...errors } },
  }, (req) => run({ op: 'guest.stop', name: req.params.name }));
  app.post<{ Params: { name: string }; Body: ExecBody }>('/v1/guests/:name/exec', {
    schema: { summary: 'Run a command in the guest (through its agent)', params: NameParams, body: ExecBody, response: { 200: ExecResult, ...errors } },
  }, (req) => run({ op: 'guest.exec', name: req.params.name, body: req.body }));
  app.get<{ Params: { name: string }; Querystring: { lines?: number } }>('/v1/guests/:name/console', {
    schema: { summary: 'Tail of the guest console / agent log', params: NameParams, querystring: Type.Object({ lines: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000 })) }), response: { 200: Type.Object({ text: Type.String() }), ...errors } },
  }, (req) => run({ op: 'guest.console', name: req.params.name, lines: req.query.lines ?? 50 }));
  app.get<{ Params: { name: string } }>('/v1/guests/:name/libvirt-xml', {
    schema: { summary: 'libvirt domain XML for a microvm guest', params: NameParams, response: { 200: Type.Object({ xml: Type.String() }), ...errors } },
  }, (req) => run({ op: 'guest.libvirtXml', name: req.params.name }));
  app.put<{ Params: { name: string }; Body: ShareResizeBody }>('/v1/guests/:name/share', {
    schema: { summary: 'Resize the guest share while it runs (shrinking below usage is refused)', params: NameParams, body: ShareResizeBody, response: { 200: GuestView, ...errors } },
  }, (req) => run({ op: 'share.resize', name: req.params.name, body: req.body }));
  // The module bodies and results are the channel ops' schemas (core/protocol/ops/modules.ts): one shape for
  // the operator over HTTP and for a guest over its channel.
  app.post<{ Params: { name: string }; Body: ModuleStartBody }>('/v1/guests/:name/modules', {
    schema: { summary: 'Start an offload module (http|stream) serving from the guest share', params: NameParams, body: ModuleStartParams, response: { 201: ModuleInfoWire, ...errors } },
  }, async (req, reply) => reply.status(201).send(await run({ op: 'module.start', name: req.params.name, body: req.body })));
  app.get<{ Params: { name: string } }>('/v1/guests/:name/modules', {
    schema: { summary: 'List the guest\'s offload modules', params: NameParams, response: { 200: ModuleListResult.properties.modules, ...errors } },
  }, (req) => run({ op: 'module.list', name: req.params.name }));
  app.delete<{ Params: { name: string; id: string } }>('/v1/guests/:name/modules/:id', {
    schema: { summary: 'Stop an offload module', params: Type.Object({ name: GuestName, id: ModuleStopParams.properties.id }), response: { 200: ModuleStopResult, ...errors } },
  }, (req) => run({ op: 'module.stop', name: req.params.name, id: req.params.id }));

  registerControlRoutes(app as unknown as FastifyInstance, run, errors);

  app.get('/metrics', { schema: { summary: 'Prometheus metrics', produces: ['text/plain'] } }, async (_req, reply) => {
    const text = await daemon.metrics.registry.metrics();
    return reply.type(daemon.metrics.registry.contentType).send(text);
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  app.get('/', { schema: { hide: true } }, async (_req, reply) => reply.type('text/html; charset=utf-8').send(dashboardHtml()));
  await app.ready();
  return app as unknown as FastifyInstance;
}
