// How fast can two workers hand a step's data back and forth? One round trip = the lead sends
// the weights (F floats) to a helper and gets a gradient of the same size back — what a step of
// data-parallel training needs. Measured in headless Chromium, between two dedicated workers:
//   postMessage  the arrays transferred (zero-copy ownership moves, each side copies its wasm
//                data in and out: modelled by one copy per side), each message an event-loop task
//   shared       one SharedArrayBuffer; copy in, Atomics.notify, the helper (blocked in
//                Atomics.wait) copies out and writes back, notify; the lead waits
// Usage: node scripts/bench-transfer.mjs [floats=100000] [round trips=2000]
import { launch } from '../tests/helpers.mjs';

const floats = Number(process.argv[2] ?? 100000);
const trips = Number(process.argv[3] ?? 2000);

const HELPER = `
let shared;
onmessage = (e) => {
  if (e.data.kind === 'shared') {
    shared = e.data;
    const ctl = new Int32Array(shared.buffer, 0, 4);
    const data = new Float32Array(shared.buffer, 16, shared.floats * 2);
    const mine = new Float32Array(shared.floats);
    let seen = 0;
    postMessage('ready');
    for (;;) {
      Atomics.wait(ctl, 0, seen);
      seen = Atomics.load(ctl, 0);
      if (seen < 0) break;
      mine.set(data.subarray(0, shared.floats));          // the weights, in
      data.set(mine, shared.floats);                      // a gradient, out
      Atomics.store(ctl, 1, seen);
      Atomics.notify(ctl, 1);
    }
    return;
  }
  // postMessage: copy the weights in, answer with a gradient (transferred).
  const mine = new Float32Array(e.data.length);
  mine.set(e.data);
  postMessage(mine, [mine.buffer]);
};`;

const LEAD = `
onmessage = async (e) => {
  const { floats, trips, helperSource } = e.data;
  const helper = new Worker(URL.createObjectURL(new Blob([helperSource], { type: 'text/javascript' })));
  const weights = new Float32Array(floats).map((_, i) => i);
  // postMessage round trips.
  let t0 = performance.now();
  for (let i = 0; i < trips; i++) {
    const out = new Float32Array(floats);
    out.set(weights);                                     // the wasm data, out
    const back = await new Promise((resolve) => { helper.onmessage = (m) => resolve(m.data); helper.postMessage(out, [out.buffer]); });
    weights.set(back);                                    // the gradient, in
  }
  const message = (performance.now() - t0) / trips;
  // Shared memory round trips.
  const buffer = new SharedArrayBuffer(16 + floats * 8);
  const ctl = new Int32Array(buffer, 0, 4);
  const data = new Float32Array(buffer, 16, floats * 2);
  await new Promise((resolve) => { helper.onmessage = resolve; helper.postMessage({ kind: 'shared', buffer, floats }); });
  t0 = performance.now();
  for (let i = 1; i <= trips; i++) {
    data.set(weights);
    Atomics.store(ctl, 0, i);
    Atomics.notify(ctl, 0);
    while (Atomics.load(ctl, 1) !== i) Atomics.wait(ctl, 1, Atomics.load(ctl, 1), 10);
    weights.set(data.subarray(floats));
  }
  const sharedMs = (performance.now() - t0) / trips;
  Atomics.store(ctl, 0, -1);
  Atomics.notify(ctl, 0);
  postMessage({ floats, trips, postMessageMs: message, sharedMs });
};`;

const browser = await launch({ webgpu: false });
try {
  const page = await browser.newPage();
  const headers = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' };
  await page.route('http://localhost:9/**', (route) => {
    route.fulfill({ status: 200, headers: { ...headers, 'content-type': 'text/html' }, body: '<!doctype html><title>transfer</title>' });
  });
  await page.goto('http://localhost:9/');
  const result = await page.evaluate(({ floats, trips, leadSource, helperSource }) => new Promise((resolve) => {
    if (!self.crossOriginIsolated) resolve({ error: 'not cross-origin isolated' });
    const lead = new Worker(URL.createObjectURL(new Blob([leadSource], { type: 'text/javascript' })));
    lead.onmessage = (e) => resolve(e.data);
    lead.onerror = (e) => resolve({ error: String(e.message) });
    lead.postMessage({ floats, trips, helperSource });
  }), { floats, trips, leadSource: LEAD, helperSource: HELPER });
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
