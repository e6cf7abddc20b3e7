// Browser end-to-end tests of the "Fit a function" lab, in Debian's headless Chromium.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serveDist, launch, openPage, screenshot, stepOf, f32, value, waitForStep, ready, playTo, cli, fpsWhileTraining, playAtOnce, cspViolations, CSP } from './helpers.mjs';

let server, browser;
before(async () => { server = await serveDist(); browser = await launch(); });
after(async () => { await browser?.close(); await server?.close(); });

test('the page loads with zero console errors and Play makes the loss fall', async () => {
  const errors = [];
  const page = await openPage(browser, `${server.url}?lab=fit`, errors);
  await ready(page);
  const before = f32(await value(page, '#stat-train-loss'));
  assert.ok(before > 0.05, `an untrained network has a large loss (${before})`);
  await page.click('#play');
  await waitForStep(page, 's > 3000');
  await page.click('#play'); // pause
  await page.waitForFunction(() => document.querySelector('#play').textContent.includes('Play'));
  const afterLoss = f32(await value(page, '#stat-train-loss'));
  assert.ok(afterLoss < before / 10, `loss fell from ${before} to ${afterLoss}`);
  // Charts and per-layer histograms are drawn.
  assert.equal(await page.locator('.layer-card').count(), 3);
  assert.ok(await page.locator('#fit-chart').isVisible());
  await screenshot(page, 'fit-trained');
  assert.deepEqual(errors, []);
  await page.context().close();
});

test('a learning-rate change mid-run takes effect without a reset', async () => {
  const link = `${server.url}?lab=fit&seed=9&stop=100`;
  const changed = await openPage(browser, link);
  const plain = await openPage(browser, link);
  await playTo(changed, 100);
  await playTo(plain, 100);
  assert.equal(await value(changed, '#stat-loss'), await value(plain, '#stat-loss'));
  // Change the learning rate at step 100, then run both on to step 200.
  await changed.fill('#ctl-lr', '0.2');
  await changed.press('#ctl-lr', 'Enter');
  await changed.locator('#ctl-lr').blur();
  assert.match(await changed.locator('#share-link').inputValue(), /lr=0\.2&/);
  for (const page of [changed, plain]) {
    await page.fill('#ctl-stop', '200');
    await page.locator('#ctl-stop').blur();
    assert.equal(await stepOf(page), 100, 'a live change keeps the step count');
    await page.click('#play');
    await waitForStep(page, 's === 200');
    await page.waitForFunction(() => document.querySelector('#play').textContent.includes('Play'));
  }
  assert.equal(await changed.locator('#stat-epoch').textContent(), await plain.locator('#stat-epoch').textContent());
  assert.notEqual(await value(changed, '#stat-loss'), await value(plain, '#stat-loss'), 'the new rate changed the run');
  await changed.context().close();
  await plain.context().close();
});

test('Copy link → a fresh page restores the controls and replays the same loss bit for bit, as the CLI does', async () => {
  const first = await openPage(browser,
    `${server.url}?lab=fit&hidden=12,12&act=relu&init=he&opt=momentum&lr=0.02&bs=16&seed=42&stop=200`);
  await first.context().grantPermissions(['clipboard-read', 'clipboard-write']);
  await playTo(first, 200);
  const loss = await value(first, '#stat-loss');
  const testLoss = await value(first, '#stat-test-loss');
  await first.click('#copy-link');
  await first.waitForFunction(() => document.querySelector('#copy-link').textContent.includes('Copied'));
  const link = await first.evaluate(() => navigator.clipboard.readText());
  assert.equal(link, await first.locator('#share-link').inputValue());
  assert.match(link, /^http:\/\/127\.0\.0\.1:\d+\/\?lab=fit&/);

  const second = await openPage(browser, link); // a new browser context: nothing shared
  await ready(second);
  for (const [id, want] of [['#ctl-hidden', '12,12'], ['#ctl-act', 'relu'], ['#ctl-init', 'he'], ['#ctl-opt', 'momentum'],
    ['#ctl-lr', '0.02'], ['#ctl-bs', '16'], ['#ctl-seed', '42'], ['#ctl-stop', '200']]) {
    assert.equal(await second.locator(id).inputValue(), want, id);
  }
  await playTo(second, 200);
  assert.equal(await value(second, '#stat-loss'), loss, 'same loss at step 200, bit for bit');
  assert.equal(await value(second, '#stat-test-loss'), testLoss);

  const native = cli(link, 200);
  assert.equal(native.step, 200);
  assert.equal(f32(native.loss), f32(loss), `CLI ${native.loss} vs browser ${loss}`);
  assert.equal(f32(native.test_loss), f32(testLoss));
  await screenshot(second, 'fit-replayed');
  await first.context().close();
  await second.context().close();
});

test('a malformed link shows its message and still trains', async () => {
  const errors = [];
  const page = await openPage(browser, `${server.url}?lab=fit&lr=banana&hidden=16,99999&bs=-3&zzz=1&seed=3`, errors);
  await ready(page);
  const text = await page.locator('#notices').textContent();
  for (const key of ['lr="banana"', 'hidden', 'bs', 'unknown key "zzz"']) assert.ok(text.includes(key), `${key} in: ${text}`);
  assert.equal(await page.locator('#ctl-lr').inputValue(), '0.01', 'lr fell back to its default');
  assert.equal(await page.locator('#ctl-seed').inputValue(), '3', 'valid keys are kept');
  await page.click('#play');
  await waitForStep(page, 's > 500');
  await screenshot(page, 'fit-malformed-link');
  assert.deepEqual(errors, []);
  await page.context().close();
});

test('keyboard: space plays and pauses, s steps, r resets', async () => {
  const page = await openPage(browser, `${server.url}?lab=fit`);
  await ready(page);
  await page.keyboard.press('s');
  await waitForStep(page, 's === 1');
  await page.keyboard.press('s');
  await waitForStep(page, 's === 2');
  await page.keyboard.press(' ');
  await waitForStep(page, 's > 100');
  await page.keyboard.press(' ');
  await page.waitForFunction(() => document.querySelector('#play').textContent.includes('Play'));
  await page.keyboard.press('r');
  await waitForStep(page, 's === 0');
  await page.context().close();
});

test('keyboard: ? lists the shortcuts and Esc closes them; space on a focused button presses that button', async () => {
  const page = await openPage(browser, `${server.url}?lab=fit`);
  await ready(page);
  await page.keyboard.press('?');
  await page.waitForSelector('#shortcuts');
  assert.match(await page.locator('#shortcuts').textContent(), /play \/ pause.*one training step.*reset/s);
  await screenshot(page, 'fit-shortcuts');
  await page.keyboard.press('Escape');
  await page.waitForSelector('#shortcuts', { state: 'detached' });
  await page.focus('#step');
  await page.keyboard.press(' ');
  await waitForStep(page, 's === 1');
  await page.waitForTimeout(400);
  assert.equal(await stepOf(page), 1, 'the focused Step button was pressed: one step, no play');
  assert.match(await page.locator('#play').textContent(), /Play/);
  await page.context().close();
});

test('a crash in the worker or the UI shows the error panel with its message', async () => {
  const page = await openPage(browser, `${server.url}?lab=fit`);
  await ready(page);
  assert.equal(await page.locator('#fatal').isVisible(), false);
  await page.evaluate(() => window.deeplyDebug.panicWorker());
  await page.waitForSelector('#fatal', { state: 'visible' });
  assert.match(await page.locator('#fatal-message').textContent(), /worker crashed.*deliberate worker panic/s);
  await screenshot(page, 'fit-worker-crash');

  const ui = await openPage(browser, `${server.url}?lab=fit`);
  await ready(ui);
  await ui.evaluate(() => { try { window.deeplyDebug.panicUi(); } catch (e) { /* the wasm trap after the panic */ } });
  await ui.waitForSelector('#fatal', { state: 'visible' });
  assert.match(await ui.locator('#fatal-message').textContent(), /deliberate UI panic/);
  await page.context().close();
  await ui.context().close();
});

test('the page stays smooth (≥ 55 frames per second) while the fit lab trains', async () => {
  const page = await openPage(browser, `${server.url}?lab=fit`);
  await ready(page);
  const fps = await fpsWhileTraining(page);
  console.log(`# ${fps.toFixed(1)} frames per second while the fit lab trains`);
  assert.ok(fps >= 55, `${fps.toFixed(1)} frames per second while the fit lab trains`);
  await page.context().close();
});

test('Play pressed the instant it is enabled starts training (fit)', async () => {
  const page = await openPage(browser, `${server.url}?lab=fit`);
  await playAtOnce(page);
  await page.context().close();
});

test('a link with thousands of unknown keys shows a bounded list of notices and still trains', async () => {
  // In the fragment, which never reaches the server (a query this long would be refused there).
  const junk = Array.from({ length: 3000 }, (_, i) => `junk${i}=1`).join('&');
  const page = await openPage(browser, `${server.url}?lab=fit#${junk}&lr=0.02`);
  await ready(page);
  assert.equal(await page.locator('#notices li').count(), 9, 'eight notices and a count');
  assert.match(await page.locator('#notices-more').textContent(), /and 2992 more/);
  assert.equal(await page.locator('#ctl-lr').inputValue(), '0.02');
  await playAtOnce(page);
  await page.context().close();
});

test('the strict Content-Security-Policy holds while the lab trains (fit)', async () => {
  const errors = [];
  const page = await openPage(browser, `${server.url}?lab=fit`, errors);
  await playAtOnce(page, 60000, errors);
  await waitForStep(page, 's > 20', 60000);
  assert.deepEqual(await cspViolations(page), []);
  assert.deepEqual(errors, []);
  // The meta tag for static hosting mirrors the served header.
  assert.equal(await page.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute('content'), CSP);
  await page.context().close();
});

test('the speed control paces training, is kept in the link, and a refused value is explained next to its field', async () => {
  const page = await openPage(browser, `${server.url}?speed=1&lab=fit`);
  await ready(page);
  assert.equal(await page.locator('#speed').inputValue(), '1');
  await page.click('#play');
  await page.waitForTimeout(1000);
  const slow = await stepOf(page);
  assert.ok(slow > 0 && slow <= 120, `1 step per frame: ${slow} steps in about a second`);
  await page.selectOption('#speed', 'max');
  await page.waitForTimeout(1000);
  const fast = await stepOf(page);
  assert.ok(fast - slow > 1000, `as fast as possible: ${fast - slow} more steps in a second`);
  const link = await page.locator('#share-link').inputValue();
  assert.match(link, /speed=max/);
  // The loss chart's step axis is logarithmic by default, so the early steps are visible.
  assert.equal(await page.locator('#loss-axis').inputValue(), 'log');
  // A refused value: its reason under its field, the previous value kept.
  await page.fill('#ctl-lr', '-1');
  await page.press('#ctl-lr', 'Enter');
  await page.waitForSelector('#err-lr');
  assert.match(await page.locator('#err-lr').textContent(), /lr=\"-1\" is not valid/);
  assert.equal(await page.locator('#ctl-lr').inputValue(), '0.01');
  await page.fill('#ctl-lr', '0.02');
  await page.press('#ctl-lr', 'Enter');
  await page.waitForSelector('#err-lr', { state: 'detached' });
  await page.context().close();
  const again = await openPage(browser, link);
  await ready(again);
  assert.equal(await again.locator('#speed').inputValue(), 'max');
  await again.context().close();
});

test('memory stays flat over a long run: the JS heap and the worker\'s wasm memory grow < 10 % after warm-up', async () => {
  const page = await openPage(browser, `${server.url}?lab=fit`);
  await ready(page);
  await page.click('#play');
  await waitForStep(page, 's > 2000', 120000);
  const measure = async () => {
    await page.evaluate(() => window.gc && window.gc());
    return {
      heap: await page.evaluate(() => performance.memory.usedJSHeapSize),
      wasm: Number(await page.locator('#stat-memory').getAttribute('data-bytes')),
    };
  };
  const before = await measure();
  await waitForStep(page, 's > 22000', 300000);
  const after = await measure();
  console.log(`# fit: heap ${(before.heap / 1e6).toFixed(1)} → ${(after.heap / 1e6).toFixed(1)} MB, worker wasm ${(before.wasm / 1e6).toFixed(1)} → ${(after.wasm / 1e6).toFixed(1)} MB`);
  assert.ok(after.wasm > 0 && after.wasm <= before.wasm * 1.1, `worker memory ${before.wasm} → ${after.wasm}`);
  assert.ok(after.heap <= before.heap * 1.1 + 2e6, `JS heap ${before.heap} → ${after.heap}`);
  await page.context().close();
});
