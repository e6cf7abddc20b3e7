// Browser end-to-end tests of the GPU worker (crates/gpu on the browser's WebGPU; in headless
// Chromium that is SwiftShader, a software adapter: correctness, never speed).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serveDist, launch, openPage, benchInPage, screenshot, ready, paused, waitForStep, value, f32, cli, fpsWhileTraining } from './helpers.mjs';

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

test('the CNN lab trains on WebGPU in the worker, names the adapter, its test accuracy rises, and a switch to the CPU keeps the run', async () => {
  const browser = await launch();
  try {
    const errors = [];
    const link = 'lab=cnn&model=small&bs=32&eval=100&stop=200&seed=2';
    const page = await openPage(browser, `${server.url}?${link}&backend=webgpu`, errors);
    await ready(page);
    await page.waitForFunction(() => /on WebGPU · .*swiftshader/i.test(document.querySelector('#backend-active')?.textContent), null, { timeout: 60000 });
    await page.click('#play');
    await waitForStep(page, 's === 200', 120000);
    await paused(page);
    const accuracy = f32(await value(page, '#stat-test-accuracy'));
    const native = cli(link, 200);
    assert.ok(accuracy > 0.8, `test accuracy after 200 steps on WebGPU: ${accuracy}`);
    assert.ok(Math.abs(accuracy - f32(native.test_accuracy)) <= 0.02, `WebGPU ${accuracy} vs CLI (CPU) ${native.test_accuracy}`);
    const note = await page.locator('#backend-note').count() ? await page.locator('#backend-note').textContent() : null;
    assert.equal(note, null, 'no note when WebGPU runs as asked');
    assert.match(await page.locator('#share-link').inputValue(), /backend=webgpu/);
    // The race gains a third lane: the same mini-batch on the GPU.
    await page.click('#race-now');
    await page.waitForSelector('#race-gpu-ms', { timeout: 60000 });
    assert.equal(await page.locator('.race-row').count(), 3, 'loops, im2col and WebGPU');
    assert.ok(Number(await page.locator('#race-gpu-ms').getAttribute('data-ms')) > 0);
    assert.ok(Number(await page.locator('#race-gpu-diff').getAttribute('data-diff')) < 1e-3, 'GPU outputs = im2col outputs');
    assert.match(await page.locator('#race-gpu').textContent(), /swiftshader/i);
    await screenshot(page, 'cnn-webgpu');
    // Switch to the CPU mid-run: the same run continues from the GPU's weights.
    await page.selectOption('#backend', 'cpu');
    await page.waitForFunction(() => document.querySelector('#backend-active')?.textContent === 'on the CPU');
    await page.click('#play');
    await waitForStep(page, 's > 230', 60000);
    await page.click('#play');
    await paused(page);
    assert.ok(f32(await value(page, '#stat-test-accuracy')) > 0.8, 'the weights came along');
    assert.match(await page.locator('#share-link').inputValue(), /backend=cpu/);
    assert.deepEqual(errors, []);
    await page.context().close();
  } finally {
    await browser.close();
  }
});

test('without WebGPU, a CNN link asking for it says so next to the picker and trains on the CPU', async () => {
  const browser = await launch({ webgpu: false });
  try {
    const errors = [];
    const page = await openPage(browser, `${server.url}?lab=cnn&model=small&stop=20&backend=webgpu`, errors);
    await ready(page);
    await page.waitForSelector('#backend-note');
    assert.match(await page.locator('#backend-note').textContent(), /WebGPU is not available.*training on the CPU/);
    assert.equal(await page.locator('#backend-active').textContent(), 'on the CPU');
    await page.click('#play');
    await waitForStep(page, 's === 20', 60000);
    await screenshot(page, 'cnn-webgpu-fallback');
    assert.deepEqual(errors, []);
    await page.context().close();
  } finally {
    await browser.close();
  }
});

test('the page stays smooth (≥ 55 frames per second) while the CNN trains on WebGPU', async () => {
  const browser = await launch();
  try {
    const errors = [];
    const page = await openPage(browser, `${server.url}?lab=cnn&model=small&backend=webgpu`, errors);
    await ready(page);
    await page.waitForFunction(() => /on WebGPU/.test(document.querySelector('#backend-active')?.textContent), null, { timeout: 60000 });
    const fps = await fpsWhileTraining(page);
    console.log(`# ${fps.toFixed(1)} fps while the small CNN trains on WebGPU (SwiftShader: LeNet-5 takes ~1 s a step there)`);
    assert.ok(fps >= 55, `${fps} fps`);
    assert.deepEqual(errors, []);
    await page.context().close();
  } finally {
    await browser.close();
  }
});
