// The table of share-size policies: one entry per scheme (the only mapping from a scheme's name to its code).
// A factory gets the validated controller config; the controller drives whichever policy it got the same way.
import type { RlsOptions } from '../rls.js';
import type { Policy } from '../policy.js';
import { Algorithm1Policy } from './algorithm1.js';
import { ImprovedPolicy, improvedOptions, type ImprovedOptions } from './improved.js';
import { MomPolicy, SenpaiPolicy, StaticPolicy } from './baselines.js';

export const SCHEMES = ['static', 'adaptive', 'queue', 'aq', 'improved', 'senpai', 'mom'] as const;
export type Scheme = (typeof SCHEMES)[number];

/** The scheme used when none is named (issue #9: improved everywhere). */
export const DEFAULT_SCHEME: Scheme = 'improved';

export interface PolicyInit {
  reference: number;
  rls?: RlsOptions;
  improved: Required<ImprovedOptions>;
}

export interface PolicySpec {
  /** Needs E[X|m] (serviceModel) to run. */
  needsModel: boolean;
  create(init: PolicyInit): Policy;
}

export const POLICIES: Record<Scheme, PolicySpec> = {
  static: { needsModel: false, create: () => new StaticPolicy() },
  adaptive: { needsModel: false, create: (i) => new Algorithm1Policy(false, true, i.rls) },
  queue: { needsModel: true, create: (i) => new Algorithm1Policy(true, false, i.rls) },
  aq: { needsModel: true, create: (i) => new Algorithm1Policy(true, true, i.rls) },
  improved: { needsModel: true, create: (i) => new ImprovedPolicy(i.improved, i.reference, i.rls) },
  senpai: { needsModel: false, create: () => new SenpaiPolicy() },
  mom: { needsModel: false, create: () => new MomPolicy() },
};

export { improvedOptions, type ImprovedOptions };
