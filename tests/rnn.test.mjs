// Browser end-to-end tests of Lab 4: the character RNN on surnames.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serveDist, launch, openPage, screenshot, f32, value, waitForStep, ready, playTo, cli, countColor, benchInPage, benchNative, fpsWhileTraining, playAtOnce, cspViolations } from './helpers.mjs';

let server, browser;
before(async () => { server = await serveDist(); browser = await launch(); });
after(async () => { await browser?.close(); await server?.close(); });

test('the lab loads the names with progress, trains like the CLI, and a typed name gets three guesses that change as it trains', async () => {
  const errors = [];
  const page = await openPage(browser, `${server.url}?lab=rnn&eval=100&stop=300&race=false`, errors);
  await page.setViewportSize({ width: 1400, height: 1000 });
  await ready(page);
  const before = await page.$$eval('#type-a-name .guess-p', (els) => els.map((e) => e.dataset.p));
  assert.equal(before.length, 3, 'three guesses from the initial weights');
  await page.click('#play');
  await waitForStep(page, 's === 300', 60000);
  await page.waitForFunction(() => document.querySelector('#play').textContent.includes('Play'));
  const after = await page.$$eval('#type-a-name .guess-p', (els) => els.map((e) => e.dataset.p));
  assert.notDeepEqual(after, before, 'the guesses moved with the weights');
  assert.equal(await page.locator('#prefixes li').count(), 'Kowalski'.length, 'one guess per prefix');

  // The same link natively: the mini-batch loss and the test accuracy, bit for bit.
  const native = cli(page.url(), 300);
  assert.equal(f32(native.loss), f32(await value(page, '#stat-loss')), 'mini-batch loss at step 300: CLI = browser');
  assert.equal(f32(native.test_accuracy), f32(await value(page, '#stat-test-accuracy')), 'test accuracy: CLI = browser');

  // Typing another name re-probes it.
  await page.fill('#probe-name', 'Nguyen');
  await page.waitForFunction(() => document.querySelectorAll('#prefixes li').length === 6);
  assert.equal(await page.locator('#unrolled .unrolled-cell').count(), 6);
  // Hovering a character: the bars show what drives the guess after that prefix; later ones fade.
  await page.locator('#unrolled .unrolled-cell').nth(2).hover();
  await page.waitForFunction(() => document.querySelector('#influence-note').textContent.includes('After "Ngu"'));
  await page.waitForFunction(() => document.querySelectorAll('#unrolled .unrolled-cell.later').length === 3);
  const hoveredBars = await page.$$eval('#unrolled .influence', (els) => els.map((e) => Number(e.dataset.g)));
  assert.ok(hoveredBars.slice(0, 3).every((g) => g > 0) && hoveredBars.slice(3).every((g) => g === 0), `${hoveredBars}`);
  await page.mouse.move(0, 0);
  await page.waitForFunction(() => document.querySelectorAll('#unrolled .unrolled-cell.later').length === 0);

  // The charts draw: gradient through time (batch in blue, the typed name in orange), loss, accuracy.
  assert.ok(await countColor(page, '#rnn-grad-chart', [37, 99, 235]) > 20, 'the batch gradient through time');
  assert.ok(await countColor(page, '#rnn-loss-chart', [234, 88, 12]) > 20, 'the test loss');
  assert.ok(await countColor(page, '#rnn-accuracy-chart', [5, 150, 105]) > 20, 'the validation accuracy');
  assert.equal(await page.locator('#confusion tr').count(), 18);

  // The race, on the current mini-batch: both timings and equal gradients.
  await page.click('#race-now');
  await page.waitForSelector('#race-loop-ms');
  assert.ok(Number(await page.locator('#race-diff').getAttribute('data-diff')) <= 1e-5);
  assert.ok(Number(await page.locator('#race-loop-ms').getAttribute('data-ms')) > 0);

  // A pasted list with a bad line is refused with its line number; the data in use stays.
  await page.click('#paste-data summary');
  await page.fill('#paste-names', 'Smith,English\nno label here\nRossi,Italian');
  await page.click('#paste-use');
  await page.waitForSelector('#notices');
  assert.match(await page.locator('#notices').textContent(), /line 2/);
  assert.match(await page.locator('#data-summary').textContent(), /22070 training/);

  await screenshot(page, 'rnn-classify');
  assert.deepEqual(errors, []);
  await page.context().close();
});

test('the loss and accuracy charts show the first steps, before the first evaluation, on a switchable step axis', async () => {
  const errors = [];
  const page = await openPage(browser, `${server.url}?lab=rnn&eval=200&stop=60&race=false`, errors);
  await ready(page);
  await page.waitForTimeout(300);
  const charts = ['#rnn-loss-chart', '#rnn-accuracy-chart'];
  const grey = (chart) => countColor(page, chart, [148, 163, 184]);
  const legendOnly = {}; // no step yet: the legend's swatch
  for (const chart of charts) legendOnly[chart] = await grey(chart);
  await page.click('#play');
  await waitForStep(page, 's === 60', 60000);
  await page.waitForTimeout(300);
  // Evaluations come every 200 steps: the mini-batches' losses and shares right (grey) are what
  // the first steps show.
  for (const chart of charts) {
    const now = await grey(chart);
    assert.ok(now > legendOnly[chart] + 40, `${chart}: the mini-batches of the first 60 steps (${now} grey pixels, ${legendOnly[chart]} before)`);
    assert.equal(await page.locator(`${chart}-axis`).inputValue(), 'log');
    await page.selectOption(`${chart}-axis`, 'recent');
    await page.waitForTimeout(300);
    assert.ok(await grey(chart) > legendOnly[chart] + 40, `${chart}: still drawn on the recent window`);
    await page.selectOption(`${chart}-axis`, 'log');
  }
  await page.locator('#rnn-accuracy-chart').scrollIntoViewIfNeeded();
  await screenshot(page, 'rnn-early-charts');
  assert.deepEqual(errors, []);
  await page.close();
});

test('generation: baby names load, the language model trains like the CLI, and sampled names appear and change with the temperature', async () => {
  const errors = [];
  const page = await openPage(browser, `${server.url}?lab=rnn&task=generate&eval=100&stop=200`, errors);
  await page.setViewportSize({ width: 1400, height: 1000 });
  await playTo(page, 200);
  await page.waitForFunction(() => document.querySelectorAll('#gen-samples li').length === 10);
  const native = cli(page.url(), 200);
  assert.equal(f32(native.dev_nll), f32(await value(page, '#stat-dev-nll')), 'dev loss at step 200: CLI = browser');
  assert.ok(f32(native.dev_nll) < f32(native.bigram_nll) + 0.3, `dev ${native.dev_nll}`);
  const before = await page.locator('#gen-samples').textContent();
  await page.fill('#ctl-temp', '0.5');
  await page.locator('#ctl-temp').dispatchEvent('change');
  await page.waitForFunction((b) => document.querySelector('#gen-samples').textContent !== b, before);
  assert.match(page.url(), /temp=0.5/);
  assert.ok(await countColor(page, '#gen-nll-chart', [234, 88, 12]) > 10, 'the dev loss is drawn');
  await screenshot(page, 'rnn-generate');
  assert.deepEqual(errors, []);
  await page.context().close();
});

test('Shakespeare: the plays load with progress, the model trains like the CLI, and passages appear from the prime', async () => {
  const errors = [];
  const page = await openPage(browser, `${server.url}?lab=rnn&task=generate&data=shakespeare&eval=100&stop=200`, errors);
  await page.setViewportSize({ width: 1400, height: 1000 });
  await playTo(page, 200);
  await page.waitForFunction(() => document.querySelectorAll('#gen-samples pre.passage').length === 2);
  const passages = await page.$$eval('#gen-samples pre.passage', (els) => els.map((e) => e.textContent));
  for (const p of passages) {
    assert.ok(p.startsWith('MENENIUS:') && p.length === 'MENENIUS:'.length + 200, JSON.stringify(p));
  }
  assert.equal(await page.locator('#gen-samples pre.passage span[title]').count(), 400, 'every drawn character has its top five');
  const native = cli(page.url(), 200);
  assert.equal(f32(native.dev_nll), f32(await value(page, '#stat-dev-nll')), 'dev loss at step 200: CLI = browser');
  assert.ok(f32(native.dev_nll) < f32(native.bigram_nll), `dev ${native.dev_nll} vs bigram ${native.bigram_nll}`);
  assert.match(await page.locator('#gen-summary').textContent(), /38614 training · 4827 dev · 4827 test windows/);
  await screenshot(page, 'rnn-shakespeare');
  assert.deepEqual(errors, []);
  await page.context().close();
});

test('the vanishing-gradient preset restores its link and tells its story', async () => {
  const page = await openPage(browser, `${server.url}?lab=rnn`);
  await ready(page);
  await page.click('#preset-vanish');
  await ready(page);
  assert.match(await page.locator('#preset-story').textContent(), /Vanishing gradient/);
  assert.equal(await page.locator('#ctl-gain').inputValue(), '0.1');
  assert.equal(await page.locator('#probe-name').inputValue(), 'Papadopoulos');
  assert.match(await page.locator('#rnn-grad-chart').evaluate((c) => c.id), /rnn-grad-chart/);
  await page.context().close();
});

test('the page stays smooth (≥ 55 frames per second) while the RNN trains', async () => {
  const page = await openPage(browser, `${server.url}?lab=rnn`);
  await page.setViewportSize({ width: 1400, height: 1000 });
  await ready(page);
  const fps = await fpsWhileTraining(page);
  console.log(`# ${fps.toFixed(1)} frames per second while the RNN trains`);
  assert.ok(fps >= 55, `${fps.toFixed(1)} frames per second`);
  await page.context().close();
});

test('Play pressed the instant it is enabled starts training (rnn); the CSP holds', async () => {
  const errors = [];
  const page = await openPage(browser, `${server.url}?lab=rnn`, errors);
  await playAtOnce(page, 60000, errors);
  await waitForStep(page, 's > 20', 60000);
  assert.deepEqual(await cspViolations(page), []);
  assert.deepEqual(errors, []);
  await page.context().close();
});

test('w4 runs in the worker and natively', async () => {
  const result = await benchInPage(browser, server.url, 'w4', 1);
  assert.equal(result.workload, 'w4');
  assert.ok(result.items_per_s > 0, JSON.stringify(result));
  console.log(`# w4 in Chromium: ${Math.round(result.items_per_s)} sequences/s`);
  assert.ok(benchNative('w4', 0.5).items_per_s > 0);
  // Batches of 64 on 2 workers (2 shards of 32 names: both train), as `--batch 64 --threads 2`;
  // a batch that is not a number is refused with its value.
  const split = await benchInPage(browser, server.url, 'w4', 1, 'cpu', 2, 64);
  assert.equal(split.workers, 2, JSON.stringify(split));
  const bad = await benchInPage(browser, server.url, 'w4', 1, 'cpu', 1, 'lots');
  assert.match(bad.error, /batch="lots" is not a number of rows/, JSON.stringify(bad));
  const huge = await benchInPage(browser, server.url, 'w4', 1, 'cpu', 1, 5000);
  assert.match(huge.error, /a batch of 1 to 1024 rows, not 5000/, JSON.stringify(huge));
});
