import type { ErrorTable } from '../types.js';

/** Codes of the guest registry (hylicsd). */
export const GUEST = {
  HYLICS_ERR_GUEST_NOT_FOUND: { http: 404, doc: 'No guest of that name exists on this daemon (`hylics guest ls` lists them).' },
  HYLICS_ERR_GUEST_EXISTS: { http: 409, doc: 'A guest of that name exists already; pick another name or remove the old guest first. Nothing was changed.' },
  HYLICS_ERR_GUEST_NOT_RUNNING: { http: 409, doc: 'The guest is not running or its agent is not connected, so the request cannot reach it; see `hylics guest show`.' },
  HYLICS_ERR_AGENT_TIMEOUT: { http: 504, doc: 'A new guest\'s agent did not connect in time; the guest was removed again and the error carries the tail of its console/agent log.' },
  HYLICS_ERR_GUEST_FIREWALL_FAILED: { http: 500, doc: 'nft refused the guest firewall (table `inet hylics_guard`, see operations.md "Network isolation"); the message has nft\'s output. The daemon does not start, or the guest is not started, without it; `hylics daemon --no-guest-firewall` runs without the firewall on hosts that cannot have it.' },
} as const satisfies ErrorTable;
