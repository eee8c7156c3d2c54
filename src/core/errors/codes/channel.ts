import type { ErrorTable } from '../types.js';

/** Codes of the channel area: control-channel framing, RPC, guest agent and guest library (see docs/protocol.md). */
export const CHANNEL = {
  HYLICS_ERR_CHANNEL_FRAME_TOO_LARGE: { http: 413, doc: 'A control-channel frame declared a payload above the frame cap (1 MiB by default); the receiver dropped it and resynchronised or closed the connection.' },
  HYLICS_ERR_CHANNEL_TRUNCATED: { http: 400, doc: 'A control-channel frame ended early (the stream closed or a resync marker arrived in the middle of it); the partial frame was discarded.' },
  HYLICS_ERR_CHANNEL_UNKNOWN_TYPE: { http: 400, doc: 'A control-channel frame carried a message type this protocol version does not define; the receiver dropped it and resynchronised or closed the connection.' },
  HYLICS_ERR_CHANNEL_BAD_JSON: { http: 400, doc: 'A control-channel payload was not valid UTF-8 JSON; the receiver dropped it and closed or resynchronised the channel.' },
  HYLICS_ERR_CHANNEL_BAD_MESSAGE: { http: 400, doc: 'A control-channel message or an operation\'s parameters/result did not match its schema (the message names the field); nothing was done.' },
  HYLICS_ERR_CHANNEL_VERSION: { http: 400, doc: 'The two ends of a control channel speak different protocol versions; upgrade the guest agent or the daemon so both match.' },
  HYLICS_ERR_CHANNEL_HANDSHAKE: { http: 504, doc: 'The other end of a control channel did not answer the hello in time; the connection was closed (the agent retries with backoff).' },
  HYLICS_ERR_CHANNEL_UNKNOWN_OP: { http: 404, doc: 'A control-channel request named an operation that is not registered or has no handler on the receiving side.' },
  HYLICS_ERR_CHANNEL_OP_DENIED: { http: 403, doc: 'The operation is not on this channel\'s allow-list for the caller (a guest may only call the operations the host allows it).' },
  HYLICS_ERR_CHANNEL_BUDGET: { http: 429, doc: 'A guest stayed over its control-channel budget (bytes, frames or daemon event-loop time per second) for too long; the daemon closed its connection and refuses it for a while (see docs/protocol.md, budgets).' },
  HYLICS_ERR_CHANNEL_BUSY: { http: 429, doc: 'Too many requests are in flight on this channel; retry after some of them complete.' },
  HYLICS_ERR_CHANNEL_DEADLINE: { http: 504, doc: 'A control-channel request got no reply before its deadline; the handler was told to abort, but it may have had effects (idempotent ops can be retried with the same id).' },
  HYLICS_ERR_CHANNEL_CLOSED: { http: 503, doc: 'The control channel closed before the request was answered; it may or may not have been carried out.' },
  HYLICS_ERR_CHANNEL_RESET: { http: 503, doc: 'The other end of the control channel restarted (sent a new hello) while the request was in flight; it may or may not have been carried out.' },
  HYLICS_ERR_CHANNEL_NOT_CONNECTED: { http: 503, doc: 'The guest\'s agent is not connected to the daemon (not started yet, restarting, or the guest is unknown to the channel server).' },
  HYLICS_ERR_CHANNEL_NO_PORT: { http: 404, doc: 'No virtio-serial port with the requested name exists under /sys/class/virtio-ports (is the VM started with the virtserialport device?).' },
  HYLICS_ERR_AGENT_UNREACHABLE: { http: 503, doc: 'The guest library could not reach the agent on its local socket (default /run/hylics/agent.sock): is hylics-agent running in this guest?' },
  HYLICS_ERR_EXEC_SPAWN: { http: 400, doc: 'The guest agent could not start the command (not found, not executable, or bad working directory); nothing ran.' },
} as const satisfies ErrorTable;
