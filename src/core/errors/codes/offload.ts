import type { ErrorTable } from '../types.js';

/** Codes of socket offload (TCP_REPAIR handoff of a guest's connection to the host, docs/offload-socket.md). */
export const OFFLOAD = {
  HYLICS_ERR_TCP_REPAIR_DENIED: { http: 403, doc: 'TCP_REPAIR was refused (EPERM): the process lacks CAP_NET_ADMIN in its network namespace; the guest library falls back to a normal in-guest send.' },
  HYLICS_ERR_TCP_REPAIR_UNAVAILABLE: { http: 501, doc: 'The kernel has no TCP_REPAIR (ENOPROTOOPT) or the native addon is not loaded; socket offload is off and sends stay in the guest.' },
  HYLICS_ERR_TCP_REPAIR_FAILED: { http: 500, doc: 'Freezing, dumping or restoring a TCP connection failed (details.errno names the call); a connection that was not yet moved keeps going in the guest.' },
  HYLICS_ERR_OFFLOAD_NOT_GUEST_FLOW: { http: 403, doc: 'The connection offered for a socket handoff does not have the guest\'s own address as its local address; the host refuses to take it.' },
  HYLICS_ERR_OFFLOAD_BUDGET: { http: 429, doc: 'The guest already has the most socket handoffs in flight that the host allows; the guest library sends this one itself.' },
  HYLICS_ERR_OFFLOAD_UNKNOWN_HANDOFF: { http: 404, doc: 'No socket handoff with this id is in flight for this guest (it finished, timed out, or never existed).' },
  HYLICS_ERR_OFFLOAD_UNAVAILABLE: { http: 503, doc: 'This daemon cannot take sockets (not root, no nftables or policy routing, or socket offload disabled); the guest library sends in the guest.' },
  HYLICS_ERR_OFFLOAD_NOT_QUIESCENT: { http: 409, doc: 'The socket still had unsent bytes or a pending write after the quiesce deadline, or is not a plain connected TCP socket; nothing was moved.' },
  HYLICS_ERR_OFFLOAD_FD_REFUSED: { http: 403, doc: 'The descriptor an app named for the descriptor copy (offload.socket.sendfd) is not a non-blocking, connected IPv4 TCP socket of the guest: no such descriptor, not a socket, another family or type, listening or closed, in another network namespace, or not on the guest\'s own address (details.why); nothing was sent.' },
  HYLICS_ERR_OFFLOAD_FD_UNAVAILABLE: { http: 503, doc: 'hylicsd cannot take descriptors from this app (no SO_PEERPIDFD on this kernel, pidfd_getfd refused, the process is gone, or the descriptor copy is off); nothing was sent, the guest library uses the TCP_REPAIR handoff.' },
} as const satisfies ErrorTable;
