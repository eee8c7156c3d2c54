import type { ErrorTable } from '../types.js';

/** Codes of the controller area (see docs/errors.md). */
export const CONTROLLER = {
  HYLICS_ERR_CONTROL_INVALID_PARAM: { http: 400, doc: 'A controller, predictor or RLS parameter is out of range (the message names it and the accepted range, e.g. f0 > 0, ci_min <= ci_max, 0 <= nA <= 8); nothing was changed.' },
  HYLICS_ERR_CONTROL_INVALID_MEASUREMENT: { http: 400, doc: 'A per-interval measurement given to the controller is malformed (non-finite or negative time, interval, size or count); the controller kept its previous decision.' },
  HYLICS_ERR_CONTROL_FIT_FAILED: { http: 422, doc: 'The service-time model E[X|m] = a + b/(m + c) could not be fitted: give at least 3 points with distinct sizes and finite positive times.' },
  HYLICS_ERR_CONTROL_BUDGET: { http: 409, doc: 'The host memory budget is smaller than the sum of the guests\' minimum share sizes; raise the budget or lower the minimums.' },
  HYLICS_ERR_CONTROL_UNKNOWN_TASK: { http: 400, doc: 'control set names a task the guest has never reported (hylics guest show lists its tasks) and that was not calibrated; run the task once, calibrate it, or leave --task out (all tasks); nothing was changed.' },
  HYLICS_ERR_CONTROL_NOT_SET: { http: 404, doc: 'The guest has no controller settings yet: set them with `hylics control set GUEST --slo 10s` (PUT /v1/guests/{name}/control).' },
  HYLICS_ERR_CONTROL_CALIBRATION_FAILED: { http: 422, doc: 'Calibration could not measure E[X|m]: the command failed in the guest, or fewer than 3 share sizes could be set above the share\'s usage (the message says which); the share was put back to its size.' },
  HYLICS_ERR_SIM_INVALID_CONFIG: { http: 400, doc: 'A simulator setting is out of range (the message names it: vCPUs, RAM, duration, rates, sizes, seeds); nothing was run.' },
  HYLICS_ERR_SIM_INVALID_TRACE: { http: 400, doc: 'An arrival trace is malformed: CSV with a header naming a `time` column (seconds, finite, >= 0, non-decreasing) and optionally `segment` (integer >= 0); the message gives the line.' },
} as const satisfies ErrorTable;
