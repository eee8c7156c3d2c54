// The disk-tier device of the simulator (src/core/sim/disk-device.ts): a fair-share fluid server in virtual time;
// and the lone-task cost a replay or the bench reads from a real run (src/core/sim/lone-tasks.ts).
// No wall-clock timing anywhere: every figure is simulated seconds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DiskDevice, deviceBytesPerS, DEFAULT_REQUEST_BYTES } from '../../../src/core/sim/disk-device.js';
import { simulate, defaultSimConfig, DEFAULT_SERVICE, type SimConfig } from '../../../src/core/sim/simulator.js';
import { loneTasks, loneCostScale } from '../../../src/core/sim/lone-tasks.js';

const MiB = 1024 * 1024;

test('the device bandwidth is the byte limit or the operation limit, whichever binds', () => {
  assert.equal(deviceBytesPerS({ readBytesPerS: 12e6, readIops: 300 }), Math.min(12e6, 300 * DEFAULT_REQUEST_BYTES));
  assert.equal(deviceBytesPerS({ readBytesPerS: 12e6, readIops: 10, requestBytes: 4096 }), 40960);
  assert.equal(deviceBytesPerS({ readBytesPerS: 12e6, readIops: 0 }), 12e6);
});

test('reads in flight share the device equally', () => {
  const d = new DiskDevice({ readBytesPerS: 12e6, readIops: 0 });
  d.add(1, 6e6);
  d.add(2, 12e6);
  // both at 6 MB/s: the 6 MB read is done after 1 s, then the other alone at 12 MB/s for its last 6 MB (0.5 s)
  const t1 = d.nextDone(0);
  assert.ok(Math.abs(t1 - 1) < 1e-9, String(t1));
  d.advance(t1);
  assert.equal(d.pop(), 1);
  const t2 = d.nextDone(t1);
  assert.ok(Math.abs(t2 - 1.5) < 1e-9, String(t2));
  d.advance(t2 - t1);
  assert.equal(d.pop(), 2);
  assert.equal(d.active, 0);
  assert.equal(d.nextDone(2), Infinity);
  assert.ok(Math.abs(d.busyS - 1.5) < 1e-9 && Math.abs(d.bytesRead - 18e6) < 1, `${d.busyS} ${d.bytesRead}`);
});

/** A deterministic guest: no service spread, segments of exactly 10 MiB, no page cache (4 GB RAM), 1 vCPU. */
function cfg(over: Partial<SimConfig>, arrivals: { time: number; segment: number }[]): SimConfig {
  return defaultSimConfig({
    seed: 3, durationS: 400, vcpus: 1, ramGB: 4,
    workload: { kind: 'trace', arrivals },
    catalogue: { segments: 4, zipfAlpha: 0, sizeMeanMiB: 10, sizeSigma: 0 },
    service: { ...DEFAULT_SERVICE, memS: 1, diskS: 2, complexitySigma: 0, noiseSigma: 0, serialFraction: 0 },
    controller: null, fixedSizeBytes: 1, sloS: 100, windowS: 50,
    ...over,
  });
}

test('without a device, or with one that never queues, the simulator gives the same responses', () => {
  const arr = [0, 0.5, 1, 1.2, 3, 3.1, 3.3, 9].map((time, k) => ({ time, segment: k % 4 }));
  const plain = simulate(cfg({}, arr));
  const svc = cfg({}, arr).service;
  const fast = simulate(cfg({ service: { ...svc, device: { readBytesPerS: 1e12, readIops: 0 } } }, arr));
  assert.equal(plain.device, undefined);
  assert.equal(fast.metrics.tasks, plain.metrics.tasks);
  assert.ok(Math.abs(fast.metrics.meanR - plain.metrics.meanR) < 1e-6, `${fast.metrics.meanR} vs ${plain.metrics.meanR}`);
  assert.ok(fast.device!.meanWaitS < 1e-6);
});

test('disk-tier tasks queue on a slow device: each waits for its share of the bandwidth', () => {
  // two tasks from the disk tier (no share) at t = 0, 10 MiB each through a 1 MiB/s device: 0.5 MiB/s each, both
  // reads done at 20 s; their CPU work (2 s alone, 4 s side by side on 1 vCPU) is long done
  const arr = [{ time: 0, segment: 0 }, { time: 0, segment: 1 }];
  const base = cfg({}, arr);
  const r = simulate({ ...base, service: { ...base.service, device: { readBytesPerS: MiB, readIops: 0 } } });
  assert.equal(r.metrics.tasks, 2);
  assert.ok(Math.abs(r.metrics.meanR - 20) < 1e-6, String(r.metrics.meanR));
  assert.ok(Math.abs(r.device!.meanWaitS - 16) < 1e-6, String(r.device!.meanWaitS)); // 20 - 4 s of CPU
  assert.ok(Math.abs(r.device!.readMiB - 20) < 1e-6, String(r.device!.readMiB));
  const alone = simulate({ ...base, service: { ...base.service, device: { readBytesPerS: MiB, readIops: 0 } },
    workload: { kind: 'trace', arrivals: [{ time: 0, segment: 0 }] } });
  assert.ok(Math.abs(alone.metrics.meanR - 10) < 1e-6, String(alone.metrics.meanR));
  // the operation limit binds the same way: 8 ops/s of 128 KiB = 1 MiB/s
  const opLimited = { readBytesPerS: 1e9, readIops: 8, requestBytes: 128 * 1024 };
  const iops = simulate({ ...base, service: { ...base.service, device: opLimited } });
  assert.ok(Math.abs(iops.metrics.meanR - 20) < 1e-6, String(iops.metrics.meanR));
});

test('a background promotion copy occupies the device; a later memory-tier hit reads nothing', () => {
  // a share with room: the first request of segment 0 enters it in the background (the task reads the disk tier
  // while the copy runs: one 10 MiB read at 1 MiB/s = 10 s); a second task on segment 1 at t = 1 shares the device;
  // segment 0 again at t = 40 (within the 60 s idle window) is in the share
  const arr = [{ time: 0, segment: 0 }, { time: 1, segment: 1 }, { time: 40, segment: 0 }];
  const base = cfg({ fixedSizeBytes: 100 * MiB }, arr);
  const svc = { ...base.service, promotion: 'background' as const, device: { readBytesPerS: MiB, readIops: 0 } };
  const r = simulate({ ...base, service: svc, record: true });
  // t 0-1: copy 0 alone (1 MiB); t 1-19: both at 0.5 MiB/s (9 MiB left of copy 0 -> done at 19); copy 1 has 1 MiB
  // left at 19, done at 20. Responses 19 and 19 (20 - 1); the third task: memory tier, 1 s of CPU
  assert.equal(r.metrics.tasks, 3);
  assert.ok(Math.abs(r.metrics.meanR - (19 + 19 + 1) / 3) < 1e-6, String(r.metrics.meanR));
  assert.ok(Math.abs(r.device!.readMiB - 20) < 1e-6, String(r.device!.readMiB));
  // under sync promotion the task waits for the copy too (its CPU time promoteS runs beside it here)
  const sync = simulate({ ...base, service: { ...svc, promotion: 'sync', promoteS: 1.5 } });
  assert.ok(Math.abs(sync.metrics.meanR - (19 + 19 + 1) / 3) < 1e-6, String(sync.metrics.meanR));
});

test('a bad device is refused with the simulator config error', () => {
  const base = cfg({}, [{ time: 0, segment: 0 }]);
  assert.throws(() => simulate({ ...base, service: { ...base.service, device: { readBytesPerS: 0, readIops: 0 } } }),
    (e: Error & { code?: string }) => e.code === 'HYLICS_ERR_SIM_INVALID_CONFIG');
  assert.throws(() => simulate({ ...base, service: { ...base.service, device: { readBytesPerS: 1e6, readIops: -1 } } }),
    (e: Error & { code?: string }) => e.code === 'HYLICS_ERR_SIM_INVALID_CONFIG');
});

test('lone tasks: only those that overlap no other; their cost relative to the alone figures', () => {
  const T = [
    { arrivalS: 0, responseS: 1, tier: 'memory' },    // lone
    { arrivalS: 2, responseS: 3, tier: 'disk' },      // overlaps the next
    { arrivalS: 4, responseS: 1, tier: 'memory' },    // overlaps the previous
    { arrivalS: 10, responseS: 2.4, tier: 'disk' },   // lone (ends at 12.4, the next starts at 12.4)
    { arrivalS: 12.4, responseS: 1.1, tier: 'memory' }, // lone
    { arrivalS: 20, responseS: 1, tier: 'memory' },   // same arrival as the next: both overlap
    { arrivalS: 20, responseS: 2, tier: 'memory' },
  ];
  assert.deepEqual(loneTasks([...T].reverse()).map((t) => t.arrivalS), [0, 10, 12.4]);
  const r = loneCostScale(T, (t) => (t.tier === 'memory' ? 1 : 2));
  assert.equal(r.n, 3);
  assert.ok(Math.abs(r.scale - (1 + 1.2 + 1.1) / 3) < 1e-12, String(r.scale));
  assert.deepEqual(loneCostScale([], () => 1), { scale: 1, n: 0 });
});
