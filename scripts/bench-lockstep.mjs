// What does a lockstep cost on this machine, with none of Deeply's code? Two dedicated workers
// in headless Chromium split a fixed amount of arithmetic per step (the lead rings through a
// SharedArrayBuffer, each computes half, the lead waits for the helper's answer), against one
// worker computing all of it, and two workers computing whole steps independently (the ceiling).
// `unit` is half a step's work in ms (W2 in Chromium: a ~1.1 ms step, so ~0.55); `floats` how
// much each side copies per step in the "with data" rows (W2: 101,770 weights and as many
// gradients). Every mode runs in alternating rounds, so that the VM's phase is shared.
//   node scripts/bench-lockstep.mjs [unit ms = 0.55] [steps = 2000] [rounds = 3] [floats = 101770]
import { launch } from '../tests/helpers.mjs';
import { withSteal, stealText } from './steal.mjs';

const unitMs = Number(process.argv[2] ?? 0.55);
const steps = Number(process.argv[3] ?? 2000);
const rounds = Number(process.argv[4] ?? 3);
const floats = Number(process.argv[5] ?? 101770);

// The arithmetic: multiply-adds over a weight-sized array, as a dense layer streams its weights.
const WORK = `
const w = new Float32Array(${floats}).map((_, i) => (i % 13) * 0.01);
function work(reps) {
  let acc = 0;
  for (let r = 0; r < reps; r++) {
    for (let i = 0; i + 3 < w.length; i += 4) acc += w[i] * 0.5 + w[i + 1] * 0.25 + w[i + 2] * 0.125 + w[i + 3];
  }
  return acc;
}`;

const HELPER = `${WORK}
onmessage = (e) => {
  const { buffer, reps, spinMs, copy, independent, steps } = e.data;
  const ctl = new Int32Array(buffer, 0, 8);
  const data = new Float32Array(buffer, 32, ${floats} * 2);
  const mine = new Float32Array(${floats});
  let sink = 0;
  if (independent) {
    Atomics.wait(ctl, 0, 0);
    const t0 = performance.now();
    for (let s = 0; s < steps; s++) sink += work(2 * reps);
    postMessage({ ms: performance.now() - t0, sink });
    return;
  }
  let seen = 0;
  postMessage('ready');
  for (;;) {
    const start = performance.now();
    while (Atomics.load(ctl, 0) === seen && performance.now() - start < spinMs) {}
    while (Atomics.load(ctl, 0) === seen) Atomics.wait(ctl, 0, seen, 50);
    seen = Atomics.load(ctl, 0);
    if (seen < 0) break;
    if (copy) mine.set(data.subarray(0, ${floats}));            // the weights, in
    sink += work(reps);
    if (copy) data.set(mine, ${floats});                       // the gradient, out
    Atomics.store(ctl, 1, seen);
    Atomics.notify(ctl, 1);
  }
  postMessage({ sink });
};`;

const LEAD = `${WORK}
const helperUrl = URL.createObjectURL(new Blob([${JSON.stringify(HELPER)}], { type: 'text/javascript' }));
function reply(worker) { return new Promise((resolve) => { worker.onmessage = (m) => resolve(m.data); }); }
async function lockstep(reps, steps, spinMs, copy) {
  const buffer = new SharedArrayBuffer(32 + ${floats} * 8);
  const ctl = new Int32Array(buffer, 0, 8);
  const data = new Float32Array(buffer, 32, ${floats} * 2);
  const weights = new Float32Array(${floats});
  const helper = new Worker(helperUrl);
  const ready = reply(helper);
  helper.postMessage({ buffer, reps, spinMs, copy, independent: false, steps });
  await ready;
  let sink = 0;
  const t0 = performance.now();
  for (let s = 1; s <= steps; s++) {
    if (copy) data.set(weights);                               // the new weights, out
    Atomics.store(ctl, 0, s);
    Atomics.notify(ctl, 0);
    sink += work(reps);
    const start = performance.now();
    while (Atomics.load(ctl, 1) !== s) {
      if (performance.now() - start > 2) Atomics.wait(ctl, 1, Atomics.load(ctl, 1), 10);
    }
    if (copy) {
      weights.set(data.subarray(${floats}));                   // the gradient, in
      for (let i = 0; i < weights.length; i++) weights[i] = weights[i] * 0.999 + 1e-6; // the update
    }
  }
  const ms = performance.now() - t0;
  const done = reply(helper);
  Atomics.store(ctl, 0, -1);
  Atomics.notify(ctl, 0);
  await done;
  helper.terminate();
  return ms;
}
async function independent(reps, steps) {
  const buffer = new SharedArrayBuffer(32 + ${floats} * 8);
  const ctl = new Int32Array(buffer, 0, 8);
  const helper = new Worker(helperUrl);
  const theirs = reply(helper);
  helper.postMessage({ buffer, reps, spinMs: 0, copy: false, independent: true, steps });
  await new Promise((r) => setTimeout(r, 50));
  Atomics.store(ctl, 0, 1);
  Atomics.notify(ctl, 0);
  const t0 = performance.now();
  let sink = 0;
  for (let s = 0; s < steps; s++) sink += work(2 * reps);
  const mine = performance.now() - t0;
  const other = (await theirs).ms;
  helper.terminate();
  return Math.max(mine, other);
}
// One measurement per message: 'calibrate' (reps of the loop in one unit), or a mode's ms.
onmessage = async (e) => {
  const { mode, unitMs, reps, steps } = e.data;
  if (mode === 'calibrate') {
    // The median of a few timings once the loop is compiled.
    work(500);
    const times = [];
    for (let k = 0; k < 7; k++) {
      const t0 = performance.now();
      work(50);
      times.push((performance.now() - t0) / 50);
    }
    times.sort((a, b) => a - b);
    postMessage(Math.max(1, Math.round(unitMs / times[3])));
    return;
  }
  if (mode === 'one') {
    const t0 = performance.now();
    let sink = 0;
    for (let s = 0; s < steps; s++) sink += work(2 * reps);
    postMessage(performance.now() - t0 + (sink === -1 ? 1 : 0)); // (uses the sums: the loop stays)
    return;
  }
  if (mode === 'pair') return postMessage(await independent(reps, steps));
  const [spin, copy] = { lockstep: [0, false], lockstep_spin: [1, false], data: [0, true], data_spin: [1, true] }[mode];
  postMessage(await lockstep(reps, steps, spin, copy));
};`;

const MODES = {
  pair: 'two whole steps at once, independently (the ceiling)',
  lockstep: 'lockstep, the helper sleeping at once',
  lockstep_spin: 'lockstep, the helper spinning 1 ms first',
  data: 'lockstep with the data, the helper sleeping at once',
  data_spin: 'lockstep with the data, the helper spinning 1 ms first',
};
const browser = await launch({ webgpu: false });
try {
  const page = await browser.newPage();
  const headers = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' };
  await page.route('http://localhost:9/**', (route) => {
    route.fulfill({ status: 200, headers: { ...headers, 'content-type': 'text/html' }, body: '<!doctype html><title>lockstep</title>' });
  });
  await page.goto('http://localhost:9/');
  const isolated = await page.evaluate((leadSource) => {
    self.lead = new Worker(URL.createObjectURL(new Blob([leadSource], { type: 'text/javascript' })));
    self.ask = (message) => new Promise((resolve, reject) => {
      self.lead.onmessage = (e) => resolve(e.data);
      self.lead.onerror = (e) => reject(new Error(String(e.message)));
      self.lead.postMessage(message);
    });
    return self.crossOriginIsolated;
  }, LEAD);
  if (!isolated) throw new Error('the page is not cross-origin isolated');
  const ask = (message) => page.evaluate((m) => self.ask(m), message);
  const reps = await ask({ mode: 'calibrate', unitMs });
  console.log(`a step: 2 units of ${reps} pass(es) over ${floats} floats; ${steps} steps per figure; speed-up over one worker (CPU time stolen meanwhile)`);
  console.log(`| one worker, ms per step | ${Object.values(MODES).join(' | ')} |`);
  console.log(`|${'---|'.repeat(Object.keys(MODES).length + 1)}`);
  for (let r = 0; r < rounds; r++) {
    const one = await withSteal(() => ask({ mode: 'one', reps, steps }));
    const cells = [`${(one.result / steps).toFixed(3)} (${stealText(one.steal)})`];
    for (const mode of Object.keys(MODES)) {
      const m = await withSteal(() => ask({ mode, reps, steps }));
      const speedup = (mode === 'pair' ? 2 : 1) * one.result / m.result;
      cells.push(`${speedup.toFixed(2)}× (${stealText(m.steal)})`);
    }
    console.log(`| ${cells.join(' | ')} |`);
  }
} finally {
  await browser.close();
}
