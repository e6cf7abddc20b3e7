// Browser end-to-end tests of the GPU worker (crates/gpu on the browser's WebGPU; in headless
// Chromium that is SwiftShader, a software adapter: correctness, never speed).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serveDist, launch, openPage, benchInPage, screenshot } from './helpers.mjs';

let server;
before(async () => { server = await serveDist(); });
after(async () => { await server?.close(); });

test('w2 and w3 train on WebGPU in the GPU worker, which names its adapter', async () => {
  const browser = await launch();
  try {
    for (const workload of ['w2', 'w3']) {
      const r = await benchInPage(browser, server.url, workload, 1, 'webgpu');
      assert.equal(r.error, undefined, JSON.stringify(r));
      assert.equal(r.workload, workload);
      assert.match(r.backend, /^gpu: \S/, 'the adapter is named');
      assert.equal(r.fallback, null, 'no fallback with WebGPU on');
      assert.ok(r.items_per_s > 0 && r.steps >= 8, JSON.stringify(r));
      console.log(`# ${workload} on WebGPU: ${Math.round(r.items_per_s)} examples/s (${r.backend})`);
    }
  } finally {
    await browser.close();
  }
});

test('without WebGPU the same link says so and runs on the CPU', async () => {
  const browser = await launch({ webgpu: false });
  try {
    const errors = [];
    const page = await openPage(browser, `${server.url}?lab=bench&workload=w2&seconds=0.5&backend=webgpu`, errors);
    await page.waitForFunction(() => document.querySelector('#bench-results')?.textContent.length > 0, null, { timeout: 120000 });
    const r = JSON.parse(await page.locator('#bench-results').textContent());
    assert.match(r.backend, /^cpu-wasm/, JSON.stringify(r));
    assert.match(r.fallback, /WebGPU is not available here/);
    assert.match(await page.locator('#bench-fallback').textContent(), /ran on the CPU instead/);
    await screenshot(page, 'bench-webgpu-fallback');
    assert.deepEqual(errors, []);
    await page.context().close();
  } finally {
    await browser.close();
  }
});
