// KeyedSerial: per-key call order, failures do not stop the next run, other keys run alongside, keys forgotten.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyedSerial } from '../../src/core/serial.js';

test('runs of one key happen one at a time in call order; a failed run does not stop the next; keys are forgotten', async () => {
  const s = new KeyedSerial<string>();
  const log: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  const a1 = s.run('a', async () => { log.push('a1 start'); await gate; log.push('a1 end'); return 1; });
  const a2 = s.run('a', async () => { log.push('a2'); throw new Error('boom'); });
  const a3 = s.run('a', () => { log.push('a3'); return Promise.resolve(3); });
  const b1 = s.run('b', async () => { log.push('b1'); return 'b'; });
  assert.equal(await b1, 'b', 'another key does not wait for key a');
  assert.deepEqual(log, ['a1 start', 'b1']);
  release();
  assert.equal(await a1, 1);
  await assert.rejects(a2, /boom/);
  assert.equal(await a3, 3);
  assert.deepEqual(log, ['a1 start', 'b1', 'a1 end', 'a2', 'a3']);
  await new Promise((r) => setImmediate(r));
  assert.equal(s.size, 0, 'settled keys are forgotten');
});

test('a synchronous throw becomes the run\'s rejection', async () => {
  const s = new KeyedSerial<number>();
  await assert.rejects(s.run(1, () => { throw new Error('sync'); }), /sync/);
});

test('pending: a key with a run asked for and not settled', async () => {
  const s = new KeyedSerial<string>();
  assert.equal(s.pending('a'), false);
  let release!: () => void;
  const run = s.run('a', () => new Promise<void>((r) => { release = r; }));
  assert.equal(s.pending('a'), true);
  assert.equal(s.pending('b'), false);
  release();
  await run;
  await new Promise((r) => setImmediate(r));
  assert.equal(s.pending('a'), false);
});
