// Browser end-to-end test of time travel: going back to a checkpoint and playing on ends on the
// same weights bit for bit; a fork from the panel or from a link trains branch B beside A, draws
// both curves and keeps either; a bad fork is refused with a message.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serveDist, launch, openPage, playTo, paused, waitForStep, countColor, screenshot } from './helpers.mjs';

let server, browser;
before(async () => { server = await serveDist(); browser = await launch({ webgpu: false }); });
after(async () => { await browser?.close(); await server?.close(); });

/** The run as its lab saves it (the playground has its own export, with its points). */
async function savedRun(page) {
  const button = (await page.locator('#export-run').count()) ? '#export-run' : '#export';
  const [download] = await Promise.all([page.waitForEvent('download'), page.click(button)]);
  const chunks = [];
  for await (const c of await download.createReadStream()) chunks.push(c);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

/** Moves the scrubber to the checkpoint at `step`. */
async function scrubTo(page, step) {
  const steps = (await page.locator('#scrub').getAttribute('data-steps')).split(',');
  const i = steps.indexOf(String(step));
  assert.ok(i >= 0, `a checkpoint at step ${step}: ${steps}`);
  await page.evaluate((i) => {
    const s = document.querySelector('#scrub');
    s.value = String(i);
    s.dispatchEvent(new Event('input', { bubbles: true }));
  }, i);
  await page.waitForFunction((t) => document.querySelector('#scrub-step').textContent === t, `step ${step}`);
}

test('going back to a checkpoint and playing on ends on the same weights, bit for bit (fit, playground, CNN)', async () => {
  for (const [link, stop, back] of [['lab=fit&seed=5&opt=adam', 300, 100], ['lab=playground&seed=5&dropout=0.1', 300, 150], ['lab=cnn&model=small&seed=5', 120, 50]]) {
    const errors = [];
    const page = await openPage(browser, `${server.url}?${link}&stop=${stop}`, errors);
    await playTo(page, stop);
    const first = await savedRun(page);
    await page.waitForFunction(() => /\d+ checkpoints/.test(document.querySelector('#timeline-summary').textContent));
    await scrubTo(page, back);
    await page.click('#rewind');
    await waitForStep(page, `s === ${back}`);
    await page.click('#play');
    await waitForStep(page, `s === ${stop}`, 60000);
    await paused(page);
    const second = await savedRun(page);
    assert.notEqual(JSON.stringify(first).length, 0);
    assert.deepEqual(second, first, `${link}: the same weights and counters after going back to ${back}`);
    assert.deepEqual(errors, [], link);
    await page.context().close();
  }
});

test('a link forks at its step: B trains beside A on the same batches, both curves draw, Keep B makes B the run', async () => {
  const errors = [];
  const page = await openPage(browser, `${server.url}?lab=fit&seed=3&lr=0.01&stop=400&fork=100&branch=lr:0.1`, errors);
  await page.waitForSelector('#fork-pending');
  assert.match(await page.locator('#fork-pending').textContent(), /forks at step 100: B sets lr = 0\.1/);
  await playTo(page, 400);
  await page.waitForSelector('#fork-status');
  assert.match(await page.locator('#fork-status').textContent(), /A: lr = 0\.01 · B: lr = 0\.1 · forked at step 100/);
  await page.waitForFunction(() => document.querySelector('#fork-chart'));
  await page.waitForTimeout(300);
  const [blue, green] = [await countColor(page, '#fork-chart', [37, 99, 235]), await countColor(page, '#fork-chart', [5, 150, 105])];
  assert.ok(blue > 50 && green > 50, `both branches drawn (A ${blue} px, B ${green} px)`);
  const link = await page.locator('#share-link').inputValue();
  assert.match(link, /fork=100&branch=lr%3A0\.1/);
  await screenshot(page, 'timeline-fork');
  await page.click('#keep-b');
  await page.waitForFunction(() => !document.querySelector('#fork-status'));
  const kept = await page.locator('#share-link').inputValue();
  assert.match(kept, /lr=0\.1/);
  assert.doesNotMatch(kept, /fork=/);
  assert.deepEqual(errors, []);
  await page.context().close();
});

test('the panel forks at a chosen checkpoint; a value B cannot take is refused with a message', async () => {
  const errors = [];
  const page = await openPage(browser, `${server.url}?lab=playground&seed=2&stop=200`, errors);
  await playTo(page, 200);
  await scrubTo(page, 100);
  await page.selectOption('#fork-key', 'lr');
  await page.fill('#fork-value', '-3');
  await page.click('#fork');
  await page.waitForSelector('#err-timeline');
  assert.match(await page.locator('#err-timeline').textContent(), /lr/);
  assert.equal(await page.locator('#fork-status').count(), 0, 'no fork from a refused value');
  await page.fill('#fork-value', '0.3');
  await page.click('#fork');
  await waitForStep(page, 's === 100');
  await page.waitForSelector('#fork-status');
  await page.click('#play');
  await page.waitForFunction(() => Number(document.querySelector('#stat-step').textContent) > 150, null, { timeout: 30000 });
  await page.click('#keep-a');
  await page.waitForFunction(() => !document.querySelector('#fork-status'));
  assert.doesNotMatch(await page.locator('#share-link').inputValue(), /fork=/);
  assert.deepEqual(errors, []);
  await page.context().close();
});
