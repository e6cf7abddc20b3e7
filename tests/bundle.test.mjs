// The download-size budget (issue #14): the app's wasm + JS, gzipped, before any data, at most
// 1 MiB. One wasm holds everything: the page, its CPU training worker and helpers, and the GPU
// worker (wgpu's WebGPU path) — no lab and no browser downloads more code than this.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { DIST } from './helpers.mjs';

const gz = (f) => zlib.gzipSync(fs.readFileSync(path.join(DIST, f)), { level: 9 }).length;

test('the app (wasm + JS, gzipped) fits in 1 MiB: one wasm for the page, its CPU worker and its GPU worker', () => {
  const files = fs.readdirSync(DIST).filter((f) => /\.(wasm|js)$/.test(f));
  assert.deepEqual(files.filter((f) => f.endsWith('.wasm')), ['deeply-web_bg.wasm'], 'one wasm');
  // The GPU path is in it: the WebGPU bindings wgpu calls are in its JS glue.
  assert.match(fs.readFileSync(path.join(DIST, 'deeply-web.js'), 'utf8'), /requestAdapter/, 'the GPU worker is in the one wasm');
  const total = files.reduce((sum, f) => sum + gz(f), 0);
  console.log(`# app ${total} bytes gzipped (${files.join(', ')})`);
  assert.ok(total <= 1024 * 1024, `${total} bytes > 1 MiB`);
});
