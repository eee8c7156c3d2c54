// The controller's commands (control.show / set / log / profile / calibrate) on top of the loop: what the daemon
// executes for the HTTP API and the CLI. Settings are checked whole, persisted in the daemon state
// (GuestRecord.control), then handed to the loop; calibration measures E[X|m] at several share sizes through
// guest exec and stores the fit. Control is the host operator's: these are not channel ops, so no guest can set
// its own or another guest's control or budget.
import { hrtime } from 'node:process';
import { fitServiceModel } from '../../core/control/index.js';
import { HylicsError, toHylicsError } from '../../core/errors/index.js';
import type { ExecResult } from '../../core/api.js';
import type { CalibrateBody, CalibrationResult, ControlBody, ControlView, DecisionEntry, ProfilePoint } from '../../core/control-api.js';
import { parseSize, MiB } from '../../core/units.js';
import type { Profiler } from '../profiler.js';
import type { ControlLoop } from './loop.js';
import { parseControlBody, type ControlRecord } from './settings.js';

/** Share sizes calibration tries when none are given, and how often each run is repeated. */
export const CALIBRATION_SIZES = [16 * MiB, 32 * MiB, 64 * MiB, 128 * MiB];
export const CALIBRATION_REPEAT = 3;
/** Longest a single calibration run may take. */
export const CALIBRATION_RUN_TIMEOUT_MS = 600_000;
/** Room above the share's usage a calibration size needs (the task writes its output somewhere). */
const CALIBRATION_ROOM_BYTES = 1 * MiB;

export interface ControlServiceDeps {
  loop: ControlLoop;
  profiler: Profiler;
  hostMemoryBytes: number;
  /** The guest's persisted control record and memory; throws HYLICS_ERR_GUEST_NOT_FOUND. */
  guest(name: string): { control: ControlRecord | undefined; memoryBytes: number; running: boolean };
  saveControl(name: string, rec: ControlRecord): Promise<void>;
  usage(name: string): Promise<{ sizeBytes: number; usedBytes: number }>;
  exec(name: string, argv: string[], timeoutMs: number): Promise<ExecResult>;
  log?: { warn(obj: object, msg: string): void };
}

export class ControlService {
  constructor(private readonly d: ControlServiceDeps) {}

  show(name: string): ControlView {
    return this.d.loop.view(name, this.d.guest(name).control);
  }

  async set(name: string, body: ControlBody): Promise<ControlView> {
    const g = this.d.guest(name);
    const cal = g.control?.calibration ?? {};
    const settings = parseControlBody(body, {
      guestMemoryBytes: g.memoryBytes, hostMemoryBytes: this.d.hostMemoryBytes, budgetBytes: this.d.loop.budgetBytes,
      othersMinBytes: this.d.loop.othersMinBytes(name),
      knowsTask: (t) => this.d.loop.knowsTask(name, t) || cal[t] !== undefined,
    });
    const rec: ControlRecord = { ...g.control, settings };
    await this.d.saveControl(name, rec);
    if (g.running) await this.d.loop.set(name, rec);
    return this.show(name);
  }

  log(name: string, limit: number): { decisions: DecisionEntry[] } {
    this.d.guest(name);
    return { decisions: this.d.loop.decisions(name, limit) };
  }

  profile(name: string, since: number): { points: ProfilePoint[] } {
    this.d.guest(name);
    return { points: this.d.loop.profile(name, since) };
  }

  /**
   * E[X|m] of a task under light load (§5.2): at each share size, run the command in the guest `repeat` times one
   * after the other (wall time measured on the host), fit a + b/(m + c), store it for the task. The loop of the
   * guest is paused meanwhile; every resize goes through the orchestrator (the share goes back to its size
   * afterwards, through the guest's tier when it promoted files meanwhile, never below usage).
   */
  async calibrate(name: string, body: CalibrateBody): Promise<CalibrationResult> {
    const g = this.d.guest(name);
    if (!g.running) throw new HylicsError('HYLICS_ERR_GUEST_NOT_RUNNING', `guest ${name} is not running`, { name });
    const sizes = [...new Set((body.sizes ?? CALIBRATION_SIZES).map((s) => parseSize(s, 'calibration size')))].sort((a, b) => a - b);
    for (const s of sizes) {
      if (s > this.d.hostMemoryBytes) throw new HylicsError('HYLICS_ERR_INVALID_SIZE', `calibration size ${s} bytes is more than this host's memory`, { what: 'size', value: s });
    }
    const repeat = body.repeat ?? CALIBRATION_REPEAT;
    const points: CalibrationResult['points'] = [];
    const skipped: CalibrationResult['skipped'] = [];
    this.d.loop.pause(name);
    const original = (await this.d.usage(name)).sizeBytes;
    try {
      for (const size of sizes) {
        const used = (await this.d.usage(name)).usedBytes;
        if (size < used + CALIBRATION_ROOM_BYTES) { skipped.push({ sizeBytes: size, reason: `${used} B are in use in the share` }); continue; }
        await this.d.loop.applySize(name, size);
        const times: number[] = [];
        for (let i = 0; i < repeat; i++) {
          const t0 = hrtime.bigint();
          const r = await this.d.exec(name, body.argv, CALIBRATION_RUN_TIMEOUT_MS);
          const s = Number(hrtime.bigint() - t0) / 1e9;
          if (r.exitCode !== 0) {
            throw new HylicsError('HYLICS_ERR_CONTROL_CALIBRATION_FAILED', `the command exited with ${r.exitCode ?? r.signal} at share size ${size} B: ${r.stderr.slice(-300)}`, { sizeBytes: size, exitCode: r.exitCode });
          }
          times.push(s);
        }
        const mean = times.reduce((a, b) => a + b, 0) / times.length;
        const sd =
          times.length > 1 ? Math.sqrt(times.reduce((a, b) => a + (b - mean) ** 2, 0) / (times.length - 1)) : 0;
        points.push({
          sizeBytes: size,
          runs: times.length,
          meanS: mean,
          sdS: sd,
          minS: Math.min(...times),
          maxS: Math.max(...times),
        });
      }
    } finally {
      // back through the orchestrator: the guest's tier may have promoted files into the larger share meanwhile
      await this.d.loop.applySize(name, original).catch((e) => this.d.log?.warn({ guest: name, err: String(e) }, 'calibration: share not restored'));
      this.d.loop.resume(name);
    }
    let fit;
    try {
      fit = fitServiceModel(points.map((p) => ({ m: p.sizeBytes / MiB, ex: p.meanS })));
    } catch (e) {
      throw new HylicsError('HYLICS_ERR_CONTROL_CALIBRATION_FAILED', `could not fit E[X|m] from ${points.length} sizes (${skipped.length} skipped): ${toHylicsError(e).message}`, { points: points.length, skipped: skipped.length });
    }
    const model = fit.model.toJSON();
    const warnings: string[] = [];
    if (fit.unconstrained) {
      const u = fit.unconstrained;
      warnings.push(`E[X|m] rose with the share size (unconstrained fit ${u.a.toFixed(3)} + ${u.b.toFixed(3)}/(m + ${u.c.toFixed(2)}) s, b < 0: a bigger share slower); `
        + `stored the best fit with b >= 0 instead (${model.b === 0 ? `flat at ${model.a.toFixed(3)} s: the share made no measurable difference` : `b = ${model.b.toFixed(3)}`}). `
        + 'Check the machine was quiet and whether the task costs more with a larger share (e.g. copies into it); the online offset corrects the level, not the slope');
      this.d.log?.warn({ guest: name, task: body.task, unconstrained: u, model }, 'calibration: E[X|m] rose with the share size; fitted with b >= 0');
    }
    const cur = this.d.guest(name).control;
    const rec: ControlRecord = {
      ...cur,
      calibration: {
        ...cur?.calibration,
        [body.task]: {
          model,
          r2: fit.r2,
          at: new Date().toISOString(),
          points: points.map((p) => ({ sizeBytes: p.sizeBytes, meanS: p.meanS, sdS: p.sdS, runs: p.runs })),
        },
      },
    };
    await this.d.saveControl(name, rec);
    await this.d.loop.set(name, rec, `calibrated ${body.task}`);
    return { guest: name, task: body.task, points, skipped, model, r2: fit.r2, warnings };
  }
}
