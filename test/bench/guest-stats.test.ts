// bench/lib/guest-stats: the pure parsers and the run difference (no cgroup needed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseKeyValues, parseProcStatCpu, runStats, type StatsSnapshot } from '../../bench/lib/guest-stats.js';

test('cgroup key-value files and /proc/stat parse', () => {
  assert.deepEqual(parseKeyValues('nr_periods 10\nnr_throttled 4\nthrottled_time 123\nbogus line here\n\n'),
    { nr_periods: 10, nr_throttled: 4, throttled_time: 123 });
  const stat = 'cpu  100 20 30 1000 50 5 5 10 0 0\ncpu0 50 10 15 500 25 2 2 5 0 0\nintr 1\n';
  assert.deepEqual(parseProcStatCpu(stat), { busyS: (100 + 20 + 30 + 5 + 5 + 10) / 100, stealS: 0.1 });
  assert.equal(parseProcStatCpu('intr 1\n'), null);
});

test('a run difference: CPUs used by the guest and by the rest, throttling, faults; unknowns stay null', () => {
  const a: StatsSnapshot = {
    t: 0, guestCpuS: 10, nrPeriods: 100, nrThrottled: 10, throttledS: 1, majorFaults: 5,
    memoryPeakBytes: null, memoryLimitHits: 0, hostBusyS: 20, hostStealS: 0,
  };
  const b: StatsSnapshot = {
    ...a, t: 10_000, guestCpuS: 25, nrPeriods: 200, nrThrottled: 70, throttledS: 4, majorFaults: 105,
    memoryPeakBytes: 512 * 1048576, memoryLimitHits: 3, hostBusyS: 40,
  };
  const r = runStats(a, b);
  assert.equal(r.wallS, 10);
  assert.equal(r.guestCpus, 1.5);
  assert.equal(r.othersCpus, 0.5);
  assert.equal(r.throttledFraction, 0.6);
  assert.equal(r.throttledS, 3);
  assert.equal(r.majorFaults, 100);
  assert.equal(r.memoryPeakMiB, 512);
  assert.equal(r.memoryLimitHits, 3);
  const none = runStats({ ...a, guestCpuS: null, nrPeriods: null }, { ...b, guestCpuS: null });
  assert.equal(none.guestCpus, null);
  assert.equal(none.othersCpus, null);
  assert.equal(none.throttledFraction, null);
});
