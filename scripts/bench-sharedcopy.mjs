// What does a copy between a worker's wasm memory and the memory two workers share cost, by
// the way it is made? Two dedicated workers in headless Chromium, with none of Deeply's code, hand
// 400 KB back and forth as a browser lockstep of W2 does (the lead writes, the helper reads and
// computes, the helper writes, the lead reads), each way copied by one of:
//   set    a typed array over the SharedArrayBuffer (`TypedArray.prototype.set`)
//   mcopy  `memory.copy` in the module of src/shared_copy.rs, which imports both memories
//   add    that module's `add_in`: read and added to another array in one pass (the lead's root)
// Prints, per mode and window of a second, the mean write / read time in µs (both workers).
//   node scripts/bench-sharedcopy.mjs [seconds per mode = 3] [rounds = 2]
// 2026-12-05, the 2-vCPU VM: set 138-204 / 39-57, mcopy 58-64 / 35-36, add 58-65 / 39-42.
import { launch } from '../tests/helpers.mjs';
import fs from 'node:fs';
const seconds = Number(process.argv[2] ?? 3);
const rounds = Number(process.argv[3] ?? 2);
const floats = 101776;
// The module's bytes, as the app embeds them.
const source = fs.readFileSync(new URL('../src/shared_copy.rs', import.meta.url), 'utf8');
const bytes = JSON.parse(`[${source.match(/const MODULE: \[u8; \d+\] = \[([^\]]*)\]/)[1].replace(/,\s*$/, '')}]`);
const WORKER = `
onmessage = (e) => {
  const { smem, index, mode, seconds, bytes } = e.data;
  const F = ${floats};
  const buffer = smem.buffer;
  const ctl = new Int32Array(buffer, 0, 16);
  const memory = new WebAssembly.Memory({ initial: 160 });
  const inst = new WebAssembly.Instance(new WebAssembly.Module(new Uint8Array(bytes)), { m: { own: memory, shared: smem } });
  const X = inst.exports;
  const OWN = 65536, BACK = 65536 + 4 * F + 4096, WORK = 65536 + 8 * F + 8192;
  const own = new Float32Array(memory.buffer, OWN, F).map((_, i) => i % 251);
  const back = new Float32Array(memory.buffer, BACK, F);
  const work = new Float32Array(memory.buffer, WORK, 500000);
  const region = (who) => new Float32Array(buffer, 64 + 4 * who * F, F);
  const off = (who) => 64 + 4 * who * F;
  const [weights, gradient] = [region(0), region(1)];
  const compute = () => { for (let i = 0; i < work.length; i++) work[i] = work[i] * 0.5 + 1; };
  const write = (who) => mode === 'set' ? region(who).set(own) : X.copy_out(off(who), OWN, 4 * F);
  const read = (who) => mode === 'set' ? back.set(region(who)) : mode === 'mcopy' ? X.copy_in(BACK, off(who), 4 * F) : X.add_in(BACK, OWN, off(who), 4 * F);
  const windows = [];
  let w = 0, r = 0, n = 0;
  const t0 = performance.now();
  let last = t0;
  const timed = (f) => { const a = performance.now(); f(); return performance.now() - a; };
  for (let step = 1; performance.now() - t0 < seconds * 1000; step++) {
    if (index === 0) {
      w += timed(() => write(0));
      Atomics.store(ctl, 0, step);
      compute();
      while (Atomics.load(ctl, 1) < step) {}
      r += timed(() => read(1));
    } else {
      while (Atomics.load(ctl, 0) < step) {}
      r += timed(() => read(0));
      compute();
      w += timed(() => write(1));
      Atomics.store(ctl, 1, step);
    }
    n++;
    if (performance.now() - last >= 1000) {
      windows.push([(w / n) * 1000, (r / n) * 1000]);
      [w, r, n, last] = [0, 0, 0, performance.now()];
    }
  }
  Atomics.store(ctl, index, 1 << 30);
  postMessage(windows);
};`;
const browser = await launch({ webgpu: false });
try {
  const page = await browser.newPage();
  const headers = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' };
  await page.route('http://localhost:9/**', (route) => route.fulfill({ status: 200, headers: { ...headers, 'content-type': 'text/html' }, body: '<!doctype html><title>mm</title>' }));
  await page.goto('http://localhost:9/');
  const ok = await page.evaluate(({ source, bytes }) => {
    self.workerUrl = URL.createObjectURL(new Blob([source], { type: 'text/javascript' }));
    return [self.crossOriginIsolated, WebAssembly.validate(new Uint8Array(bytes))];
  }, { source: WORKER, bytes });
  console.log('isolated, valid:', ok);
  const run = (mode) => page.evaluate(({ mode, seconds, floats, bytes }) => {
    const smem = new WebAssembly.Memory({ initial: Math.ceil((64 + 8 * floats) / 65536) + 1, maximum: 65536, shared: true });
    return Promise.all([0, 1].map((index) => new Promise((resolve, reject) => {
      const worker = new Worker(self.workerUrl);
      worker.onmessage = (e) => { worker.terminate(); resolve(e.data); };
      worker.onerror = (e) => reject(new Error(String(e.message)));
      worker.postMessage({ smem, index, mode, seconds, bytes });
    })));
  }, { mode, seconds, floats, bytes });
  for (let r = 0; r < rounds; r++) {
    for (const mode of ['set', 'mcopy', 'add']) {
      const [a, b] = await run(mode);
      const cells = a.map((x, i) => { const y = b[i] ?? x; return `${((x[0] + y[0]) / 2).toFixed(0)} / ${((x[1] + y[1]) / 2).toFixed(0)}`; });
      console.log(`${mode.padEnd(6)} ${cells.join(' · ')}`);
    }
  }
} finally { await browser.close(); }
