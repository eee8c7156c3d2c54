import type { ErrorTable } from '../types.js';

/** Codes of the HTTP API's own checks (authentication, Host allow-list, body media type); see docs/operations.md. */
export const API = {
  HYLICS_ERR_API_UNAUTHORIZED: { http: 401, doc: 'The request reached a TCP listener of the API (--listen) without the right bearer token (`Authorization: Bearer <token>`, the token is in <state-dir>/api-token, readable by root only); nothing was done.' },
  HYLICS_ERR_API_HOST_DENIED: { http: 421, doc: 'The request\'s Host header names neither an IP address, localhost, nor a name given with `hylics daemon --api-host` (a DNS-rebinding guard); nothing was done.' },
  HYLICS_ERR_API_MEDIA_TYPE: { http: 415, doc: 'A request body that is not `application/json` (the API parses nothing else, so cross-site form posts cannot reach it); nothing was done.' },
} as const satisfies ErrorTable;
