// Browser end-to-end tests of Lab 1 in full: targets and the extended range, the polynomial,
// pitfall presets (matching the CLI), auto-pause on NaN with its one-click fix, the affine panel.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serveDist, launch, openPage, screenshot, f32, value, waitForStep, ready, paused, playTo, cli, countColor } from './helpers.mjs';

let server, browser;
before(async () => { server = await serveDist(); browser = await launch(); });
after(async () => { await browser?.close(); await server?.close(); });

const BLUE = [37, 99, 235];
const ORANGE = [234, 88, 12];

test('the stuck preset tells its story, matches the CLI, and its fixed twin fits', async () => {
  const page = await openPage(browser, `${server.url}?lab=fit`);
  await ready(page);
  await page.click('#preset-stuck-relu');
  await page.waitForURL(/fn=cube/);
  // The new page mounts after its wasm loads: wait for it rather than racing it.
  await page.waitForSelector('#preset-stuck-relu.active', { timeout: 10000 });
  await playTo(page, 3000);
  const train = await value(page, '#stat-train-loss');
  assert.ok(f32(train) > 5000, `stuck: train loss ${train}`);
  assert.match(await page.locator('#diagnoses').textContent(), /ReLUs are dead/);
  const native = cli(page.url(), 3000);
  assert.equal(f32(native.train_loss), f32(train), 'CLI and browser agree bit for bit');
  assert.equal(f32(native.loss), f32(await value(page, '#stat-loss')));
  await screenshot(page, 'lab1-stuck-relu');

  await page.click('#preset-stuck-relu-fixed');
  await page.waitForURL(/init=he/);
  await playTo(page, 3000);
  assert.ok(f32(await value(page, '#stat-train-loss')) < 0.05);
  assert.equal(await page.locator('#diagnoses .diagnosis').count(), 0);
  await page.context().close();
});

test('NaN pauses training by itself, says why, and the one-click fix trains again', async () => {
  const errors = [];
  const page = await openPage(browser, `${server.url}?lab=fit&fn=sin&opt=sgd&lr=3`, errors);
  await ready(page);
  await page.click('#play');
  await page.waitForSelector('.diagnosis.severe', { timeout: 20000 });
  await paused(page);
  assert.match(await page.locator('#status').textContent(), /NaN/);
  const stoppedAt = await page.locator('#stat-step').textContent();
  await page.waitForTimeout(500);
  assert.equal(await page.locator('#stat-step').textContent(), stoppedAt, 'it stays paused');
  assert.match(await page.locator('#stat-loss').textContent(), /NaN|∞/);
  await screenshot(page, 'lab1-nan-paused');
  await page.click('.diagnosis.severe .fix');
  await waitForStep(page, 's === 0');
  assert.equal(await page.locator('#ctl-lr').inputValue(), '0.3');
  await page.click('#play');
  await waitForStep(page, 's > 2000');
  assert.ok(Number.isFinite(f32(await value(page, '#stat-train-loss'))));
  assert.equal(await page.locator('.diagnosis.severe').count(), 0);
  assert.deepEqual(errors, []);
  await page.context().close();
});

test('every chart draws: extended range, mini-batch, losses, gradient norms, unit contributions', async () => {
  const page = await openPage(browser, `${server.url}?lab=fit&fn=sin&act=relu&init=he&hidden=8&bs=8&stop=1500`);
  await playTo(page, 1500);
  assert.match(page.url(), /bs=8/);
  for (const id of ['#fit-chart', '#loss-chart', '#grad-chart', '#units-chart']) {
    assert.ok(await page.locator(id).isVisible(), `${id} visible`);
    const blue = await countColor(page, id, BLUE);
    assert.ok(blue > 40, `${id} has a blue series (${blue} px)`);
  }
  assert.ok(await countColor(page, '#fit-chart', ORANGE) > 200, 'target and mini-batch drawn');
  // The fit covers the extended range: the x axis reaches ±2π for sin.
  const v = Number(await value(page, '#stat-extended-loss'));
  assert.ok(v > f32(await value(page, '#stat-test-loss')), 'outside the training interval the fit is worse');
  assert.ok(f32(await value(page, '#stat-test-r2')) > 0.9);
  await screenshot(page, 'lab1-charts');
  await page.context().close();
});

test('the polynomial model trains its coefficients', async () => {
  const page = await openPage(browser, `${server.url}?lab=fit&model=poly&degree=5&opt=adam&lr=0.05&stop=2000`);
  await ready(page);
  assert.equal(await page.locator('#ctl-hidden').count(), 0, 'network controls are hidden');
  assert.equal(await page.locator('#ctl-degree').inputValue(), '5');
  assert.equal(await page.locator('#units-chart').isVisible(), false);
  const before = f32(await value(page, '#stat-train-loss'));
  await page.click('#play');
  await waitForStep(page, 's === 2000');
  const after = f32(await value(page, '#stat-train-loss'));
  assert.ok(after < before / 5 && after < 0.05, `polynomial loss ${before} → ${after}`);
  assert.match(await page.locator('.layer-card h4').first().textContent(), /polynomial, degree 5/);
  await page.context().close();
});

test('what a layer does to space: affine∘affine stays parallel, a ReLU folds', async () => {
  const page = await openPage(browser, `${server.url}?lab=fit`);
  await ready(page);
  const verdict = page.locator('#space-verdict');
  assert.match(await verdict.textContent(), /straight and parallel/);
  await page.locator('#a-4').fill('1.5'); // move map A's translation: still affine
  assert.match(await verdict.textContent(), /straight and parallel/);
  await page.check('#space-relu');
  assert.match(await verdict.textContent(), /Folded/);
  await page.locator('#space-panel').screenshot({ path: 'tests/output/lab1-space-relu.png' });
  await page.context().close();
});
