// Browser end-to-end tests of the playground.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { serveDist, launch, openPage, screenshot, f32, value, waitForStep, ready, paused, playTo, cli, countColor, benchInPage, benchNative, fpsWhileTraining, playAtOnce, cspViolations, CSP } from './helpers.mjs';

let server, browser;
before(async () => { server = await serveDist(); browser = await launch(); });
after(async () => { await browser?.close(); await server?.close(); });

test('spiral with the default network reaches test loss < 0.1, as the CLI does', async () => {
  const errors = [];
  const page = await openPage(browser, `${server.url}?lab=playground&data=spiral&stop=5000`, errors);
  await playTo(page, 5000);
  const testLoss = await value(page, '#stat-test-loss');
  assert.ok(f32(testLoss) < 0.1, `test loss ${testLoss}`);
  const native = cli(page.url(), 5000);
  assert.equal(f32(native.test_loss), f32(testLoss), 'CLI and browser agree bit for bit');
  assert.equal(f32(native.test_accuracy), f32(await value(page, '#stat-test-accuracy')));
  assert.ok(await countColor(page, '#heatmap', [8, 119, 189]) > 500, 'the heatmap is drawn');
  assert.ok(await page.locator('#confusion').isVisible());
  await screenshot(page, 'playground-spiral');
  assert.deepEqual(errors, []);
  await page.context().close();
});

test('a TensorFlow Playground link restores its controls', async () => {
  const page = await openPage(browser,
    `${server.url}#activation=tanh&batchSize=10&dataset=spiral&learningRate=0.03&networkShape=8,8&x=true&y=true&seed=0.5`);
  await ready(page);
  assert.equal(await page.locator('#nav-playground.active').count(), 1);
  assert.equal(await page.locator('#ctl-act').inputValue(), 'tanh');
  assert.equal(await page.locator('#ctl-bs').inputValue(), '10');
  assert.equal(await page.locator('#ctl-data').inputValue(), 'spiral');
  assert.equal(await page.locator('#ctl-lr').inputValue(), '0.03');
  assert.equal(await page.locator('#ctl-loss').inputValue(), 'mse');
  assert.match(await page.locator('.network-editor').textContent(), /2 hidden layers.*layer 1: 8 units.*layer 2: 8 units/s);
  assert.ok(await page.locator('#ctl-x').isChecked() && await page.locator('#ctl-y').isChecked());
  assert.equal(await page.locator('#ctl-sinx').isChecked(), false);
  assert.equal(await page.locator('#notices').count(), 0, 'no notices for a valid TF link');
  assert.match(page.url(), /\?lab=playground&data=spiral/);
  await page.context().close();
});

test('<control>_hide keys hide their controls and stay in the shared link', async () => {
  const page = await openPage(browser, `${server.url}?lab=playground&noise_hide=true&dataset_hide=true&hidden_hide=true`);
  await ready(page);
  assert.equal(await page.locator('#ctl-noise').isVisible(), false);
  assert.equal(await page.locator('#ctl-data').isVisible(), false);
  assert.equal(await page.locator('.network-editor').isVisible(), false);
  assert.ok(await page.locator('#ctl-lr').isVisible());
  assert.match(await page.locator('#share-link').inputValue(), /noise_hide=true&data_hide=true&hidden_hide=true/);
  await page.context().close();
});

test('CSV import rejects a malformed file with a line number and keeps the data; a good one loads', async () => {
  const page = await openPage(browser, `${server.url}?lab=playground&data=xor`);
  await ready(page);
  const before = await page.locator('#point-count').textContent();
  await page.setInputFiles('#csv-file', { name: 'bad.csv', mimeType: 'text/csv', buffer: Buffer.from('x,y,label\n1,2,1\n3,oops,0\n') });
  await page.waitForSelector('#notices');
  assert.match(await page.locator('#notices').textContent(), /line 3: not a number/);
  assert.equal(await page.locator('#point-count').textContent(), before);
  assert.equal(await page.locator('#ctl-data').inputValue(), 'xor');
  const rows = ['x,y,label', ...Array.from({ length: 40 }, (_, i) => `${(i % 10) - 4.5},${Math.floor(i / 10) - 1.5},${i % 2}`)];
  await page.setInputFiles('#csv-file', { name: 'good.csv', mimeType: 'text/csv', buffer: Buffer.from(rows.join('\n')) });
  await page.waitForFunction(() => document.querySelector('#point-count').textContent.startsWith('40 points'));
  assert.equal(await page.locator('#ctl-data').inputValue(), 'custom');
  // Click to add a point of the chosen class.
  const box = await page.locator('#heatmap').boundingBox();
  await page.mouse.click(box.x + box.width * 0.7, box.y + box.height * 0.3);
  await page.waitForFunction(() => document.querySelector('#point-count').textContent.startsWith('41 points'));
  await page.context().close();
});

test('export → import restores the exact state; a clicked link edits its weight', async () => {
  const first = await openPage(browser, `${server.url}?lab=playground&data=circle&stop=300`);
  await playTo(first, 300);
  const [download] = await Promise.all([first.waitForEvent('download'), first.click('#export')]);
  const file = await download.path();
  const saved = JSON.parse(fs.readFileSync(file, 'utf8'));
  assert.equal(saved.step, 300);
  assert.match(saved.link, /^lab=playground&data=circle/);
  const testLoss = await value(first, '#stat-test-loss');

  const second = await openPage(browser, `${server.url}?lab=playground&data=xor`);
  await ready(second);
  await second.setInputFiles('#import-file', file);
  await waitForStep(second, 's === 300');
  assert.equal(await second.locator('#ctl-data').inputValue(), 'circle');
  assert.equal(await value(second, '#stat-test-loss'), testLoss, 'same weights, same loss');
  const [again] = await Promise.all([second.waitForEvent('download'), second.click('#export')]);
  assert.deepEqual(JSON.parse(fs.readFileSync(await again.path(), 'utf8')), saved, 'export → import → export is identical');

  // Click the first link (input x₁ → layer-1 unit 1) and give it a new weight.
  await second.locator('#graph').scrollIntoViewIfNeeded();
  const point = await second.evaluate(() => {
    const c = document.querySelector('#graph');
    const r = c.getBoundingClientRect();
    const columns = 4; // inputs, two hidden layers, output
    const gap = (c.width - 60) / (columns - 1);
    const y = 24 + 17;
    const px = (30 + 17 + 30 + gap - 17) / 2;
    return { x: r.left + px * r.width / c.width, y: r.top + y * r.height / c.height };
  });
  second.once('dialog', (d) => d.accept('2.5'));
  await second.mouse.click(point.x, point.y);
  await second.mouse.move(point.x, point.y + 1);
  await second.waitForFunction(() => /= 2\.5000/.test(document.querySelector('#hover-text').textContent), null, { timeout: 5000 }).catch(async (e) => { throw new Error(`${e.message}; hover: ${await second.locator('#hover-text').textContent()}`); });
  await screenshot(second, 'playground-imported');
  await first.context().close();
  await second.context().close();
});

test('the benchmark page runs w1 in the worker and writes its JSON; the CLI does the same natively', async () => {
  const result = await benchInPage(browser, server.url, 'w1', 0.5);
  assert.equal(result.workload, 'w1');
  assert.equal(result.backend, 'cpu-wasm-simd128');
  assert.ok(result.items_per_s > 1000 && result.ms_per_step > 0, JSON.stringify(result));
  assert.equal(result.workers, 1, 'W1 trains on one worker (its network is too small to split)');
  const native = benchNative('w1', 0.3);
  assert.deepEqual(Object.keys(native).sort(), ['backend', 'items_per_s', 'ms_per_step', 'steps', 'workers', 'workload']);
  assert.equal(native.workers, 1);
});

test('the page stays smooth (≥ 55 frames per second) while the playground trains', async () => {
  const page = await openPage(browser, `${server.url}?lab=playground`);
  await ready(page);
  const fps = await fpsWhileTraining(page);
  console.log(`# ${fps.toFixed(1)} frames per second while the playground trains`);
  assert.ok(fps >= 55, `${fps.toFixed(1)} frames per second while the playground trains`);
  await page.context().close();
});

test('NaN pauses the playground too, with the shared diagnosis and its one-click fix', async () => {
  const errors = [];
  const page = await openPage(browser, `${server.url}?lab=playground&data=reg-plane&act=relu&lr=10&opt=sgd`, errors);
  await ready(page);
  await page.click('#play');
  await page.waitForSelector('.diagnosis.severe', { timeout: 20000 });
  await paused(page);
  assert.match(await page.locator('.diagnosis.severe').textContent(), /NaN or infinite/);
  const stoppedAt = await page.locator('#stat-step').textContent();
  await page.waitForTimeout(500);
  assert.equal(await page.locator('#stat-step').textContent(), stoppedAt, 'it stays paused');
  await screenshot(page, 'playground-nan-paused');
  await page.click('.diagnosis.severe .fix');
  await waitForStep(page, 's === 0');
  assert.equal(Number(await page.locator('#ctl-lr').inputValue()), 1);
  assert.deepEqual(errors, []);
  await page.context().close();
});

test('Play pressed the instant it is enabled starts training (playground)', async () => {
  const page = await openPage(browser, `${server.url}?lab=playground`);
  await playAtOnce(page);
  await page.context().close();
});

test('with no points of your own, Play says to add points first (not NaN)', async () => {
  const page = await openPage(browser, `${server.url}?lab=playground&data=custom`);
  await ready(page);
  await page.click('#play');
  await page.waitForFunction(() => document.querySelector('#status').textContent.includes('add points first'));
  await paused(page);
  assert.equal(await page.locator('.diagnosis.severe').count(), 0);
  await page.context().close();
});

test('the strict Content-Security-Policy holds while the lab trains (playground)', async () => {
  const errors = [];
  const page = await openPage(browser, `${server.url}?lab=playground`, errors);
  await playAtOnce(page, 60000, errors);
  await waitForStep(page, 's > 20', 60000);
  assert.deepEqual(await cspViolations(page), []);
  assert.deepEqual(errors, []);
  // The meta tag for static hosting mirrors the served header.
  assert.equal(await page.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute('content'), CSP);
  await page.context().close();
});

test('a point label that the training problem does not have is refused (CSV on a regression set, an import), and the worker trains on', async () => {
  const errors = [];
  const page = await openPage(browser, `${server.url}?lab=playground&data=reg-plane`, errors);
  await ready(page);
  const before = await page.locator('#point-count').textContent();
  await page.setInputFiles('#csv-file', { name: 'seven.csv', mimeType: 'text/csv', buffer: Buffer.from('x,y,label\n1,2,1\n3,1,7\n') });
  await page.waitForSelector('#notices');
  assert.match(await page.locator('#notices').textContent(), /line 3: the label must be a class 0\.\.1/);
  assert.equal(await page.locator('#point-count').textContent(), before, 'the data is unchanged');
  // An export whose points carry label 5 is refused by name, the state kept.
  const bad = JSON.stringify({ link: 'lab=playground&data=custom', step: 0, epoch: 0, parameters: [], points: [{ x: 1, y: 1, label: 5 }] });
  await page.setInputFiles('#import-file', { name: 'bad.json', mimeType: 'application/json', buffer: Buffer.from(bad) });
  await page.waitForFunction(() => document.querySelector('#notices').textContent.includes('import'));
  assert.equal(await page.locator('#ctl-data').inputValue(), 'reg-plane');
  await page.click('#play');
  await waitForStep(page, 's > 200');
  assert.deepEqual(errors, []);
  await page.context().close();
});

test('a regression set offers squared error only, shows its colour scale, and "?" explains the numbers', async () => {
  const page = await openPage(browser, `${server.url}?lab=playground&data=reg-plane`);
  await ready(page);
  assert.match(await page.locator('#loss-fixed').textContent(), /squared error/);
  assert.equal(await page.locator('#ctl-loss').count(), 0);
  assert.match(await page.locator('#color-scale').textContent(), /−1 or less.*\+1 or more/);
  await page.click('#stats-help-toggle');
  assert.match(await page.locator('#stats-help').textContent(), /update:data.*about 1e-3 is healthy/);
  await page.selectOption('#ctl-data', 'xor');
  await page.waitForSelector('#ctl-loss');
  assert.match(await page.locator('#color-scale').textContent(), /class 1 \(blue\)/);
  await page.context().close();
});
