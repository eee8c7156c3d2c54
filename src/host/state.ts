// The daemon's persisted registry: <state-dir>/state.json. It is the source of truth for which guests exist;
// after a restart the daemon reconciles it with the mounts, namespaces and processes it finds.
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { HylicsError } from '../core/errors/index.js';
import { readFileIfExists, writeFileAtomic } from '../os/atomic-file.js';
import type { DriverState, GuestNetwork, GuestSpec } from './drivers/types.js';
import type { ControlRecord } from './control/settings.js';

export interface GuestRecord {
  spec: GuestSpec;
  network: GuestNetwork;
  createdAt: string;
  /** What the driver needs to find its guest again; undefined when not started. */
  driverState?: DriverState;
  /** Desired state: a guest the operator created stays 'running' until removed (brought back after a restart). */
  desired: 'running' | 'stopped';
  /** Share-size controller settings and calibration (hylics control set / calibrate); the loop resumes from them. */
  control?: ControlRecord;
}

export interface PersistedState {
  version: 1;
  guests: Record<string, GuestRecord>;
}

export class StateStore {
  readonly path: string;
  private state: PersistedState = { version: 1, guests: {} };
  private writing: Promise<void> = Promise.resolve();

  constructor(stateDir: string) {
    this.path = join(stateDir, 'state.json');
  }

  async load(): Promise<PersistedState> {
    const text = await readFileIfExists(this.path);
    if (text === undefined) return this.state;
    try {
      const parsed = JSON.parse(text) as PersistedState;
      if (parsed.version !== 1 || typeof parsed.guests !== 'object' || parsed.guests === null) throw new Error('unknown state format');
      this.state = parsed;
    } catch (e) {
      const aside = `${this.path}.corrupt-${Date.now()}`;
      await rename(this.path, aside);
      throw new HylicsError('HYLICS_ERR_STATE_CORRUPT', `state file ${this.path} could not be read (${(e as Error).message}); moved to ${aside}`, { path: aside });
    }
    return this.state;
  }

  get guests(): Readonly<Record<string, GuestRecord>> {
    return this.state.guests;
  }

  get(name: string): GuestRecord | undefined {
    return this.state.guests[name];
  }

  /** Apply a change and persist it; writes are serialized so the file always holds a complete snapshot. */
  async update(fn: (s: PersistedState) => void): Promise<void> {
    fn(this.state);
    const snapshot = JSON.stringify(this.state, null, 2);
    const next = this.writing.then(() => writeFileAtomic(this.path, snapshot));
    this.writing = next.catch(() => undefined);
    await next;
  }
}
