import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CachedJob } from '../../src/core/cached-job.js';

test('callers during a run share it; the result is kept while it is still good; a failure is not kept', async () => {
  let runs = 0;
  let good = true;
  let fail = false;
  const release: Array<() => void> = [];
  const job = new CachedJob<number>(
    async () => {
      runs++;
      await new Promise<void>((r) => release.push(r));
      if (fail) throw new Error(`run ${runs} failed`);
      return runs;
    },
    () => good,
  );
  const [a, b] = [job.get(), job.get()];
  assert.equal(release.length, 1, 'one run for two callers');
  release.shift()!();
  assert.deepEqual(await Promise.all([a, b]), [1, 1]);
  assert.equal(await job.get(), 1, 'kept');
  assert.equal(runs, 1);

  good = false;
  fail = true;
  const c = job.get();
  release.shift()!();
  await assert.rejects(c, /run 2 failed/);
  fail = false;
  const d = job.get();
  assert.equal(runs, 3, 'the failed run kept nothing: the next call runs again');
  release.shift()!();
  assert.equal(await d, 3);
});
