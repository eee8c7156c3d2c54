import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HylicsError } from '../../../src/core/errors/index.js';
import { contentType, etagOf, parseRange, parseTarget, playlistUris } from '../../../src/host/modules/serve.js';

test('parseTarget decodes per component and refuses escapes', () => {
  assert.deepEqual(parseTarget('/a/b%20c.txt?x=1'), ['a', 'b c.txt']);
  assert.deepEqual(parseTarget('//a/./b/'), ['a', 'b']);
  assert.deepEqual(parseTarget('/%252e%252e'), ['%2e%2e'], 'decoded once: a literal name, not ..');
  for (const bad of ['http://x/a', '*', 'a/b', '/a%2fb', '/a%00b', '/%zz']) assert.equal(parseTarget(bad), null, bad);
  for (const esc of ['/..', '/a/../../b', '/%2e%2e/x', '/%2E%2E']) assert.throws(() => parseTarget(esc), (e: unknown) => e instanceof HylicsError && e.code === 'HYLICS_ERR_PATH_ESCAPE', esc);
});

test('parseRange: single ranges, suffixes, unsatisfiable, ignored forms', () => {
  assert.deepEqual(parseRange('bytes=0-99', 1000), { start: 0, end: 99 });
  assert.deepEqual(parseRange('bytes=900-', 1000), { start: 900, end: 999 });
  assert.deepEqual(parseRange('bytes=-100', 1000), { start: 900, end: 999 });
  assert.deepEqual(parseRange('bytes=-5000', 1000), { start: 0, end: 999 });
  assert.deepEqual(parseRange('bytes=10-5000', 1000), { start: 10, end: 999 });
  assert.equal(parseRange('bytes=1000-', 1000), 'unsatisfiable');
  assert.equal(parseRange('bytes=-0', 1000), 'unsatisfiable');
  assert.equal(parseRange('bytes=0-0', 0), 'unsatisfiable');
  for (const ignored of [undefined, 'bytes=5-1', 'bytes=0-1,3-4', 'items=0-1', 'bytes=-', 'bytes=abc']) assert.equal(parseRange(ignored, 1000), null, String(ignored));
});

test('content types and etags', () => {
  assert.equal(contentType('a/b.M3U8'), 'application/vnd.apple.mpegurl');
  assert.equal(contentType('x.ts'), 'video/mp2t');
  assert.equal(contentType('x.m4s'), 'video/iso.segment');
  assert.equal(contentType('x.mp4'), 'video/mp4');
  assert.equal(contentType('noext'), 'application/octet-stream');
  assert.notEqual(etagOf({ ino: 1, size: 2, mtimeMs: 3 }), etagOf({ ino: 1, size: 2, mtimeMs: 4 }));
});

test('playlistUris: segments, EXT-X-MAP and variant URIs', () => {
  const pl = '#EXTM3U\n#EXT-X-MAP:URI="init.mp4"\n#EXTINF:1.0,\nseg0.m4s\n#EXTINF:1.0,\nsub/seg1.m4s\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv1/index.m3u8\n';
  assert.deepEqual(playlistUris(pl), ['init.mp4', 'seg0.m4s', 'sub/seg1.m4s', 'v1/index.m3u8']);
});
