// The download-size budget (issue #14): the app's wasm + JS, gzipped, before any data, at most
// 1 MiB — the page and its CPU training worker share one wasm. The GPU worker, fetched only by
// the CNN lab where the browser has WebGPU, is reported beside it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { DIST } from './helpers.mjs';

const gz = (f) => zlib.gzipSync(fs.readFileSync(path.join(DIST, f)), { level: 9 }).length;

test('the app (wasm + JS, gzipped) fits in 1 MiB, one wasm for the page and its worker', () => {
  const files = fs.readdirSync(DIST).filter((f) => /\.(wasm|js)$/.test(f));
  const app = files.filter((f) => !f.startsWith('gpu_worker'));
  assert.deepEqual(app.filter((f) => f.endsWith('.wasm')), ['deeply-web_bg.wasm'], 'one wasm for the page and the CPU worker');
  const total = app.reduce((sum, f) => sum + gz(f), 0);
  const gpu = files.filter((f) => f.startsWith('gpu_worker')).reduce((sum, f) => sum + gz(f), 0);
  console.log(`# app ${total} bytes gzipped (${app.join(', ')}); GPU worker ${gpu} more`);
  assert.ok(total <= 1024 * 1024, `${total} bytes > 1 MiB`);
});
