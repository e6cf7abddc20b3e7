// What does it cost to hand a step's data to the other core, moment by moment? Two dedicated
// workers in headless Chromium, with none of Deeply's code, copy as a browser lockstep of W2 does:
// the lead writes the weights (F floats) from wasm memory into a SharedArrayBuffer, the helper
// copies them out, both compute (a pass over 2 MB of their own), the helper writes its gradient
// into the buffer and the lead copies it out. `own` is the control: each worker writes its region
// and copies it back itself, so no line crosses between cores. Prints, per window of a second,
// the mean time of a write into the buffer and of a read out of it, both workers together.
//   node scripts/bench-crosscore.mjs [seconds per mode = 6] [rounds = 2] [floats = 101770]
// On these VMs (2026-12-05) the crossing writes sat at ~12-15 µs for seconds at a time and at
// ~150-200 µs for others, the reads at ~12 and ~20, while `own` stayed at ~13 throughout: the
// cost of moving lines between the vCPUs changes with the host (where it runs them), not with
// the copying code. Copies of the buffer used in turn (4 or 16) and reading a region before
// writing it did not change it.
import { launch } from '../tests/helpers.mjs';
import { withSteal, stealText } from './steal.mjs';

const seconds = Number(process.argv[2] ?? 6);
const rounds = Number(process.argv[3] ?? 2);
const floats = Number(process.argv[4] ?? 101770);

const WORKER = `
onmessage = (e) => {
  const { buffer, index, mode, seconds } = e.data;
  const F = ${floats};
  const ctl = new Int32Array(buffer, 0, 16);
  const memory = new WebAssembly.Memory({ initial: 160 });
  const own = new Float32Array(memory.buffer, 65536, F).map((_, i) => i % 251);
  const back = new Float32Array(memory.buffer, 65536 + 4 * F + 4096, F);
  const work = new Float32Array(memory.buffer, 65536 + 8 * F + 8192, 500000);
  const region = (who) => new Float32Array(buffer, 64 + 4 * who * F, F);
  const [weights, gradient] = [region(0), region(1)];
  const compute = () => { for (let i = 0; i < work.length; i++) work[i] = work[i] * 0.5 + 1; };
  const windows = [];
  let w = 0, r = 0, n = 0;
  const t0 = performance.now();
  let last = t0;
  const timed = (f) => { const a = performance.now(); f(); return performance.now() - a; };
  for (let step = 1; performance.now() - t0 < seconds * 1000; step++) {
    if (mode === 'own') {
      const mine = region(index);
      w += timed(() => mine.set(own));
      r += timed(() => back.set(mine));
      compute();
    } else if (index === 0) {
      w += timed(() => weights.set(own));
      Atomics.store(ctl, 0, step);
      compute();
      while (Atomics.load(ctl, 1) < step) {}
      r += timed(() => back.set(gradient));
    } else {
      while (Atomics.load(ctl, 0) < step) {}
      r += timed(() => back.set(weights));
      compute();
      w += timed(() => gradient.set(own));
      Atomics.store(ctl, 1, step);
    }
    n++;
    if (performance.now() - last >= 1000) {
      windows.push([(w / n) * 1000, (r / n) * 1000]);
      [w, r, n, last] = [0, 0, 0, performance.now()];
    }
  }
  // The lead may finish its last step before the helper: let it through.
  Atomics.store(ctl, index, 1 << 30);
  postMessage(windows);
};`;

const browser = await launch({ webgpu: false });
try {
  const page = await browser.newPage();
  const headers = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' };
  await page.route('http://localhost:9/**', (route) => {
    route.fulfill({ status: 200, headers: { ...headers, 'content-type': 'text/html' }, body: '<!doctype html><title>cross-core</title>' });
  });
  await page.goto('http://localhost:9/');
  const isolated = await page.evaluate((source) => {
    self.workerUrl = URL.createObjectURL(new Blob([source], { type: 'text/javascript' }));
    return self.crossOriginIsolated;
  }, WORKER);
  if (!isolated) throw new Error('the page is not cross-origin isolated');
  const run = (mode) => page.evaluate(({ mode, seconds, floats }) => {
    const buffer = new SharedArrayBuffer(64 + 8 * floats);
    return Promise.all([0, 1].map((index) => new Promise((resolve, reject) => {
      const worker = new Worker(self.workerUrl);
      worker.onmessage = (e) => { worker.terminate(); resolve(e.data); };
      worker.onerror = (e) => reject(new Error(String(e.message)));
      worker.postMessage({ buffer, index, mode, seconds });
    })));
  }, { mode, seconds, floats });
  console.log(`${floats} floats a copy; per window of 1 s: write / read into and out of the shared buffer, µs (both workers' mean)`);
  for (let r = 0; r < rounds; r++) {
    for (const mode of ['exchange', 'own']) {
      const { result, steal } = await withSteal(() => run(mode));
      const [a, b] = result;
      const cells = a.map((x, i) => {
        const y = b[i] ?? x;
        return `${((x[0] + y[0]) / 2).toFixed(0)} / ${((x[1] + y[1]) / 2).toFixed(0)}`;
      });
      console.log(`${mode.padEnd(8)} ${cells.join(' · ')}  (CPU time stolen ${stealText(steal)})`);
    }
  }
} finally {
  await browser.close();
}
