// Browser end-to-end tests of the home page (the journey) and the journey bar on every lab.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serveDist, launch, openPage, screenshot } from './helpers.mjs';

let server, browser;
before(async () => { server = await serveDist(); browser = await launch(); });
after(async () => { await browser?.close(); await server?.close(); });

const JOURNEY = [
  ['fit', 'Fit a function'],
  ['playground', 'Playground'],
  ['cnn', 'CNN on real MNIST'],
  ['batchnorm', 'Batch Norm, with and without'],
  ['rnn', 'RNN: names to languages'],
];

test('the root URL shows the journey: a card per lab, in order, each opening its lab', async () => {
  const errors = [];
  const page = await openPage(browser, server.url, errors);
  await page.waitForSelector('#journey .journey-card');
  const ids = await page.$$eval('#journey .journey-card', (els) => els.map((e) => e.id));
  assert.deepEqual(ids, JOURNEY.map(([k]) => `card-${k}`));
  for (const [key] of JOURNEY) {
    const card = page.locator(`#card-${key}`);
    assert.ok(await card.locator('svg.preview').count() === 1, `${key}: a preview`);
    assert.ok(await card.locator('.learn li').count() >= 3, `${key}: what you learn`);
    assert.match(await card.locator('.first-run').textContent(), /First run: \S/);
  }
  await screenshot(page, 'home');
  for (const [key, title] of JOURNEY) {
    await page.goto(server.url);
    await page.click(`#card-${key} a`);
    await page.waitForFunction((t) => document.querySelector('h1')?.textContent === t, title);
    assert.match(page.url(), new RegExp(`\\?lab=${key}(&|$)`));
    assert.equal(await page.locator(`#nav-${key}.active`).count(), 1);
  }
  assert.deepEqual(errors, []);
  await page.context().close();
});

test('every lab shows where it sits in the journey, with the previous and next labs', async () => {
  const page = await openPage(browser, `${server.url}?lab=cnn`);
  await page.waitForSelector('.journey-bar');
  assert.match(await page.locator('.journey-bar .where').textContent(), /The journey · 2 · CNN/);
  assert.equal(await page.locator('#journey-prev').getAttribute('href'), '?lab=playground');
  assert.equal(await page.locator('#journey-next').getAttribute('href'), '?lab=batchnorm');
  await page.click('#journey-next');
  await page.waitForFunction(() => document.querySelector('h1')?.textContent === 'Batch Norm, with and without');
  await page.goto(`${server.url}?lab=fit`);
  await page.waitForSelector('.journey-bar');
  assert.equal(await page.locator('#journey-prev').count(), 0, 'the first lab has no previous');
  await page.goto(`${server.url}?lab=rnn`);
  await page.waitForSelector('.journey-bar');
  assert.equal(await page.locator('#journey-next').count(), 0, 'the last lab has no next');
  await page.click('#journey-home');
  await page.waitForSelector('#journey');
  // A link with keys but no lab is still a fit-lab link (old share links keep working).
  await page.goto(`${server.url}?lr=0.02`);
  await page.waitForFunction(() => document.querySelector('h1')?.textContent === 'Fit a function');
  await page.context().close();
});

test("every lab's \"new\" button beside the seed draws a new seed, which the share link carries", async () => {
  const errors = [];
  const page = await openPage(browser, `${server.url}?lab=fit&seed=7`, errors);
  for (const [key] of JOURNEY) {
    await page.goto(`${server.url}?lab=${key}&seed=7`);
    await page.waitForFunction(() => document.querySelector('#ctl-seed')?.value === '7');
    // The fit lab's button has its own id (its tests name it); the others share one.
    await page.click(key === 'fit' ? '#new-seed' : '#regenerate');
    await page.waitForFunction(() => document.querySelector('#ctl-seed').value !== '7');
    const seed = await page.locator('#ctl-seed').inputValue();
    assert.match(seed, /^\d+$/, `${key}: a whole number`);
    await page.waitForFunction((s) => document.querySelector('#share-link')?.value.includes(`seed=${s}`), seed);
  }
  assert.deepEqual(errors, []);
  await page.context().close();
});
