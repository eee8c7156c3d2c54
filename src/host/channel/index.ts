// Host end of the guest control channel (spec: docs/protocol.md).
//
// How to use (daemon):
//   import { ChannelServer } from '../channel/index.js';
//   const channels = new ChannelServer({ log });                       // log: pino logger (optional)
//   channels.handle('share.info', async (guest) => shares.usage(guest));  // host ops: (guestName, params, ctx)
//   channels.handle('task.report', (guest, p) => {
//     profiler.tasks(guest, p.events, p.dropped);
//     return { accepted: p.events.length };
//   });
//   // every new agent session (first connect, reconnect, agent restart):
//   channels.on('connected', (guest, hello) => ...);
//   channels.on('disconnected', (guest, reason) => ...);
//   channels.on('event', (guest, name, data) => ...);    // e.g. 'agent.status'
//   // { mode: 'listen', path } or { mode: 'connect', path }:
//   await channels.addGuest('web1', driver.channel(ctx, state));
//   await channels.waitConnected('web1', 30_000);
//   const exec = { argv: ['sh', '-c', 'echo hi'], timeoutMs: 10_000 };
//   const r = await channels.request('web1', 'exec', exec, { timeoutMs: 15_000 });
//   Buffer.from(r.stdout, 'base64')                       // exitCode / signal / stdout / stderr (base64) / timedOut
//   await channels.request('web1', 'health', {});
//   channels.emitEvent('web1', 'share.resized', { sizeBytes });
//   await channels.removeGuest('web1'); await channels.close();
// Errors: HYLICS_ERR_CHANNEL_NOT_CONNECTED (no agent), _DEADLINE, _CLOSED, _RESET, plus whatever the guest's
// handler threw (e.g. HYLICS_ERR_EXEC_SPAWN). A guest that sends garbage only loses its own connection.
// Other areas add ops in src/core/protocol/ops/<area>.ts (OPS.register(defineOp(...))) and serve the host side
// with channels.handle(op, handler); guest-served ops are called with channels.request(guest, op, params).
export { ChannelServer } from './server.js';
export type { ChannelServerOptions, GuestChannelOptions, GuestChannelInfo, HostHandler, ServerRequestOptions } from './server.js';
export { DEFAULT_CHANNEL_BUDGET } from './budget.js';
export type { ChannelBudgetOptions, BudgetStats } from './budget.js';
