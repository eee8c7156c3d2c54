/**
 * Share-size control (paper §5): the API the daemon drives, unchanged from the simulator.
 *
 *   const ctl = new ShareController(config: ControllerConfig);
 *   // every time the control interval expires (ctl.interval seconds after the previous call):
 *   const d: Decision = ctl.step({
 *     time,              // s since the controller started (monotonic)
 *     meanResponseTime,  // s, mean over tasks completed in the interval, or null if none completed
 *     arrivals,          // tasks that arrived in the interval
 *     shareUsedBytes,    // bytes in use in the share now
 *     shareSizeBytes,    // the share's current size limit
 *     completions?, interval?, fullFallbacks?,  // optional: count, covered seconds, share-full disk fallbacks
 *   });
 *   // d.sizeBytes: next share size (finite, within [minBytes, min(maxBytes, budget)]);
 *   // d.nextIntervalS: when to call step() again; d.actuated, d.reason, d.lambda: for logs and metrics.
 *   ctl.setBudget(bytes)   // the host arbiter's current cap for this guest (see arbitrateBudget)
 *
 * Schemes: 'static' | 'adaptive' (RLS only) | 'queue' (predictor only) | 'aq' (Algorithm 1, the paper's) |
 * 'improved' | 'senpai' | 'mom'. Bad parameters throw HYLICS_ERR_CONTROL_INVALID_PARAM, bad measurements
 * HYLICS_ERR_CONTROL_INVALID_MEASUREMENT (the controller state is then unchanged).
 */
export { ShareController, SCHEMES, DEFAULT_SCHEME, POLICIES, type Scheme, type ControllerConfig, type Measurement, type Decision, type ImprovedOptions, type ControllerState, type ControllerSnapshot, SNAPSHOT_VERSION } from './controller.js';
export { ServiceModel, fitServiceModel, psResponseTime, serviceTimeForResponse, ArrivalRateEstimator, type ServiceModelParams, type FitPoint, type FitResult } from './queueing.js';
export { Rls, type RlsOptions } from './rls.js';
export { arbitrateBudget, type BudgetRequest } from './budget.js';
