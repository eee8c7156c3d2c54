import type { ErrorTable } from '../types.js';

/** Codes of the module area (see docs/errors.md): host-side middleware modules serving a guest's share. */
export const MODULE = {
  HYLICS_ERR_MODULE_NOT_FOUND: { http: 404, doc: 'The guest has no module with that id (ids are per guest; one guest cannot see another\'s modules).' },
  HYLICS_ERR_MODULE_KIND: { http: 400, doc: 'The module kind is not one of http, stream.' },
  HYLICS_ERR_MODULE_ENGINE: { http: 409, doc: 'The daemon\'s module engine cannot serve this module kind: stream modules need module-engine nginx or auto, not lighttpd (lighttpd cannot ask the stream gate before it sends a segment).' },
  HYLICS_ERR_MODULE_ROOT: { http: 400, doc: 'The module root is not a directory inside the guest\'s share (it escapes the share, crosses a symlink or does not exist).' },
  HYLICS_ERR_MODULE_PORT_IN_USE: { http: 409, doc: 'The guest already runs a module on that port (or the host port is taken); stop it first or pick another port.' },
  HYLICS_ERR_MODULE_LIMIT: { http: 429, doc: 'The guest runs as many modules as allowed (maxModulesPerGuest); stop one first.' },
  HYLICS_ERR_MODULE_WORKER: { http: 503, doc: 'The guest\'s module worker process could not be started or did not answer in time; it is restarted automatically, retry.' },
  HYLICS_ERR_NFT_FAILED: { http: 500, doc: 'nft refused the packet-steering rules for a module (the message has nft\'s output); the module was not started.' },
} as const satisfies ErrorTable;
