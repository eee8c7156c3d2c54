import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errorCode, hylics } from '../helpers/cli.js';

/** Run the real `hylics sim ...` (a child process: the test runner reports over this process's stdout, so
 * stdout is not intercepted here); returns stdout, or throws { code } parsed from the CLI's error line. */
async function run(args: string[]): Promise<string> {
  const r = await hylics(['sim', ...args]);
  if (r.code !== 0) throw Object.assign(new Error(r.stderr), { code: errorCode(r) });
  return r.stdout;
}

test('sim run --json gives the metrics the issue lists, and --plot writes an SVG', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), `hylics-sim-${process.pid}-`));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const svg = join(dir, 'run.svg');
  const out = JSON.parse(await run(['run', '--workload', '2', '--scheme', 'aq', '--json', '--plot', svg]));
  for (const k of ['error', 'p95R', 'sloWindowFraction', 'sloTaskFraction', 'peakSizeMiB', 'meanSizeMiB', 'gbHours', 'settlingS', 'actuations']) assert.ok(k in out.metrics, k);
  assert.ok(out.decisions.length > 5);
  assert.match(readFileSync(svg, 'utf8'), /^<svg/);
});

test('sim run reads workload #2 per arrival and with the earlier E[X|m] fit when asked', async () => {
  const light = JSON.parse(await run(['run', '--workload', '2', '--scheme', 'queue', '--w2-phase', '0', '--json']));
  const op = JSON.parse(
    await run(['run', '--workload', '2', '--scheme', 'queue', '--w2-phase', '0', '--calibration', 'operating', '--json']),
  );
  // average rate 1/6 s⁻¹
  assert.ok(light.metrics.tasks > 450 && light.metrics.tasks < 750, String(light.metrics.tasks));
  assert.ok(op.model.b > light.model.b, `${JSON.stringify(op.model)} vs ${JSON.stringify(light.model)}`); // fitted at λ = 1/8: falls to the working set
  assert.equal(light.metrics.tasks, op.metrics.tasks); // same seed, same tasks
});

test('sim run replays a CSV trace and rejects a malformed one with a code', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), `hylics-sim-${process.pid}-`));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const good = join(dir, 'good.csv');
  writeFileSync(good, 'time\n' + Array.from({ length: 200 }, (_, i) => (i * 6).toFixed(1)).join('\n') + '\n');
  const out = JSON.parse(await run(['run', '--workload', good, '--scheme', 'improved', '--json']));
  assert.ok(out.metrics.tasks >= 190);
  const bad = join(dir, 'bad.csv');
  writeFileSync(bad, 'time\n5\n3\n');
  await assert.rejects(run(['run', '--workload', bad]), { code: 'HYLICS_ERR_SIM_INVALID_TRACE' });
  await assert.rejects(run(['run', '--workload', join(dir, 'missing.csv')]), { code: 'HYLICS_ERR_INVALID_ARGUMENT' });
  await assert.rejects(run(['run', '--workload', '1', '--scheme', 'nope']), { code: 'HYLICS_ERR_INVALID_ARGUMENT' });
});

test('sim table3 --json has one row per Table 3 row with every scheme', async () => {
  const out = JSON.parse(await run(['table3', '--seeds', '1', '--json']));
  assert.equal(out.rows.length, 12);
  for (const r of out.rows) {
    assert.ok(r.workload === 1 || r.workload === 2);
    assert.ok(typeof r.vcpus === 'number' && typeof r.ramGB === 'number');
    for (const s of ['adaptive', 'queue', 'aq', 'improved']) {
      assert.ok(Number.isFinite(r[s].error) && Number.isFinite(r[s].errorStd) && Number.isFinite(r[s].peakShareMB), s);
    }
    for (const k of ['aqVsAdaptive', 'aqVsQueue']) assert.ok(['better', 'tie', 'worse'].includes(r.paired[k].verdict), k);
    assert.deepEqual(Object.keys(r.paired.improvedVsAq), ['error', 'p95', 'sloWindows', 'sloTasks', 'gbHours']);
  }
  await assert.rejects(run(['table3', '--seeds', '0']), { code: 'HYLICS_ERR_INVALID_ARGUMENT' });
  await assert.rejects(run(['table3', '--seeds', '1', '--serial-fraction', '2']), { code: 'HYLICS_ERR_INVALID_ARGUMENT' });
  await assert.rejects(run(['run', '--workload', '1', '--max-task-vcpus', '-1']), { code: 'HYLICS_ERR_INVALID_ARGUMENT' });
  await assert.rejects(run(['run', '--workload', '2', '--calibration', 'heavy']), { code: 'HYLICS_ERR_INVALID_ARGUMENT' });
  await assert.rejects(run(['run', '--workload', '2', '--w2-phase', '-5']), { code: 'HYLICS_ERR_INVALID_ARGUMENT' });
});
