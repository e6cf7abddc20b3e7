// Browser end-to-end tests of Lab 3: the plain and the BN network trained side by side.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serveDist, launch, openPage, screenshot, f32, value, waitForStep, ready, paused, playTo, cli, countColor, benchInPage, benchNative, fpsWhileTraining, playAtOnce, cspViolations } from './helpers.mjs';

let server, browser;
before(async () => { server = await serveDist(); browser = await launch(); });
after(async () => { await browser?.close(); await server?.close(); });

const ORANGE = [234, 88, 12];
const BLUE = [37, 99, 235];

test('both nets train on the same batches like the CLI; every chart draws; the train/eval toggle and calibrate work', async () => {
  const errors = [];
  const page = await openPage(browser, `${server.url}?lab=batchnorm&eval=100&stop=300`, errors);
  await page.setViewportSize({ width: 1400, height: 1000 });
  await playTo(page, 300);
  await page.waitForFunction(() => document.querySelector('#diff-bn'));

  // The same link natively: both nets' test accuracy and the mini-batch loss, bit for bit.
  const native = cli(page.url(), 300);
  const plain = f32(await value(page, '#stat-plain-test-accuracy'));
  const bn = f32(await value(page, '#stat-bn-test-accuracy'));
  assert.equal(f32(native.plain_test_accuracy), plain, 'plain test accuracy: CLI = browser');
  assert.equal(f32(native.bn_test_accuracy), bn, 'BN test accuracy: CLI = browser');
  assert.equal(f32(native.loss), f32(await value(page, '#stat-loss')), 'BN mini-batch loss at step 300: CLI = browser');
  assert.ok(plain > 0.85 && bn > 0.85, `both learn: plain ${plain}, BN ${bn}`);

  // Every chart draws both nets (orange = plain, blue = BN).
  for (const id of ['#bn-loss-chart', '#bn-accuracy-chart']) {
    assert.ok(await countColor(page, id, ORANGE) > 20, `${id}: the plain net's curve`);
    assert.ok(await countColor(page, id, BLUE) > 20, `${id}: the BN net's curve`);
  }
  assert.ok(await countColor(page, '#bn-pct-plain', ORANGE) > 20 && await countColor(page, '#bn-pct-bn', BLUE) > 20, 'percentile charts');
  assert.equal(await page.locator('#heatmaps canvas').count(), 2, 'one heat map per net for the one hidden layer');
  assert.ok(await countColor(page, '#heatmaps canvas:nth-child(1)', ORANGE) > 50, 'the plain heat map is drawn');
  assert.ok(await countColor(page, '#heatmaps canvas:nth-child(2)', BLUE) > 50, 'the BN heat map is drawn');
  await page.click('#heat-q2');
  assert.ok(await countColor(page, '#bn-depth-grad', BLUE) > 10 && await countColor(page, '#bn-depth-grad', ORANGE) > 10, 'gradient by depth');
  assert.ok(await countColor(page, '#bn-series-bn', BLUE) > 10, 'update:data ratio over time');
  assert.ok(await countColor(page, '#bn-stats-mean', BLUE) > 10, 'running vs batch statistics');

  // The train/eval toggle changes the accuracy shown for the BN net to the training-mode one.
  const trainMode = await value(page, '#stat-bn-test-accuracy-train-mode');
  assert.equal(f32(await page.locator('#diff-bn').getAttribute('data-value')), bn);
  await page.selectOption('#ctl-mode', 'train');
  await page.waitForFunction((v) => Math.fround(Number(document.querySelector('#diff-bn').dataset.value)) === v, f32(trainMode));
  assert.notEqual(f32(trainMode), bn, 'the two modes measure different accuracies');
  assert.match(page.url(), /mode=train/);

  // Calibrate: the running statistics are recomputed over the training set.
  await page.click('#calibrate');
  await page.waitForFunction(() => document.querySelector('#calibrated').textContent.includes('recomputed'));
  assert.match(await page.locator('#calibrated').textContent(), /60000 training images/);

  await screenshot(page, 'batchnorm-seed');
  assert.deepEqual(errors, []);
  await page.context().close();
});

test('the Figure 1 preset restores its link, tells its story, and the BN net leads', async () => {
  const page = await openPage(browser, `${server.url}?lab=batchnorm`);
  await ready(page);
  await page.click('#preset-figure1');
  await ready(page);
  assert.equal(await page.locator('#preset-figure1.active').count(), 1);
  assert.match(await page.locator('#preset-story').textContent(), /Ioffe & Szegedy/);
  assert.equal(await page.locator('#ctl-hidden').inputValue(), '100,100,100');
  assert.equal(await page.locator('#ctl-act').inputValue(), 'sigmoid');
  await page.click('#play');
  await waitForStep(page, 's >= 500', 120000);
  await page.click('#play');
  await paused(page);
  await page.waitForFunction(() => Number(document.querySelector('#diff-points')?.dataset.value) > 5, null, { timeout: 60000 });
  assert.equal(await page.locator('#heatmaps canvas').count(), 6, 'three hidden layers, two nets');
  await page.click('#series-saturation');
  await page.locator('#percentiles').scrollIntoViewIfNeeded();
  await screenshot(page, 'batchnorm-figure1');
  await page.locator('#heatmaps').scrollIntoViewIfNeeded();
  await screenshot(page, 'batchnorm-figure1-heat');
  await page.context().close();
});

test('ten times the learning rate: the plain net stalls, the run pauses once and says why, the BN net trains on', async () => {
  const errors = [];
  const page = await openPage(browser, `${server.url}?lab=batchnorm&hidden=128&act=relu&init=he&opt=sgd&lr=1&bs=64&eval=200&epochs=1`, errors);
  await ready(page);
  await page.click('#play');
  await page.waitForSelector('#plain-failure', { timeout: 60000 });
  await paused(page);
  assert.match(await page.locator('#plain-failure').textContent(), /plain net stalled/);
  assert.ok(await page.locator('.diagnosis .fix').count() >= 1, 'a diagnosis with its one-click fix');
  const at = Number(await page.locator('#stat-step').textContent());
  await page.click('#play');
  await waitForStep(page, `s > ${at + 100}`, 60000);
  assert.deepEqual(errors, []);
  await page.context().close();
});

test('a batch of one is refused next to its field, and the run keeps its batch size', async () => {
  const page = await openPage(browser, `${server.url}?lab=batchnorm&bs=1`);
  await ready(page);
  assert.match(await page.locator('#notices').textContent(), /at least 2 examples/);
  assert.equal(await page.locator('#ctl-bs').inputValue(), '64');
  await page.fill('#ctl-bs', '1');
  await page.locator('#ctl-bs').dispatchEvent('change');
  await page.waitForSelector('.field-error');
  assert.match(await page.locator('.field-error').first().textContent(), /at least 2/);
  await page.context().close();
});

test('the page stays smooth (≥ 55 frames per second) while both nets train', async () => {
  const page = await openPage(browser, `${server.url}?lab=batchnorm&hidden=100,100,100&act=sigmoid`);
  await page.setViewportSize({ width: 1400, height: 1000 });
  await ready(page);
  const fps = await fpsWhileTraining(page);
  console.log(`# ${fps.toFixed(1)} frames per second while the pair trains`);
  assert.ok(fps >= 55, `${fps.toFixed(1)} frames per second while the pair trains`);
  await page.context().close();
});

test('Play pressed the instant it is enabled starts training (batchnorm); the CSP holds', async () => {
  const errors = [];
  const page = await openPage(browser, `${server.url}?lab=batchnorm`, errors);
  await playAtOnce(page, 60000, errors);
  await waitForStep(page, 's > 20', 60000);
  assert.deepEqual(await cspViolations(page), []);
  assert.deepEqual(errors, []);
  await page.context().close();
});

test('w2 and w2bn run in the worker and natively', async () => {
  for (const w of ['w2', 'w2bn']) {
    const result = await benchInPage(browser, server.url, w, 1);
    assert.equal(result.workload, w);
    assert.ok(result.items_per_s > 0, JSON.stringify(result));
    console.log(`# ${w} in Chromium: ${Math.round(result.items_per_s)} examples/s`);
    assert.ok(benchNative(w, 0.5).items_per_s > 0);
  }
});
