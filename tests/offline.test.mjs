// Offline: after a first visit, the app and the datasets it fetched load and train with the
// server gone (the service worker, www/sw.js); the strict CSP still holds.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { DIST, serveDist, launch, openPage, ready, waitForStep, cspViolations, screenshot } from './helpers.mjs';

let browser;
before(async () => { browser = await launch({ webgpu: false }); });
after(async () => { await browser?.close(); });

test('the service worker caches exactly files the build has (one missing file fails its install)', () => {
  const sw = fs.readFileSync(path.join(DIST, 'sw.js'), 'utf8');
  const shell = JSON.parse(sw.match(/const SHELL = (\[[^\]]*\])/)[1].replace(/'/g, '"'));
  const missing = shell.filter((f) => f !== './' && !fs.existsSync(path.join(DIST, f)));
  assert.deepEqual(missing, []);
  const built = fs.readdirSync(DIST).filter((f) => /\.(wasm|js|css)$/.test(f) && f !== 'sw.js');
  assert.deepEqual(built.filter((f) => !shell.includes(f)), [], 'every app file is kept for offline use');
});

test('after a first visit the CNN lab loads MNIST and trains with the server gone', async () => {
  const server = await serveDist();
  const errors = [];
  const page = await openPage(browser, `${server.url}?lab=cnn&model=small&speed=max`, errors);
  await ready(page);
  // The service worker is in charge and holds the app and the data the first visit fetched.
  // (An install that fails — a file in its list that the build lacks — never gets ready: fail, don't hang.)
  await page.evaluate(() => Promise.race([navigator.serviceWorker.ready,
    new Promise((_, no) => setTimeout(() => no(new Error('the service worker never became ready: did its install fail?')), 30000))]));
  await page.waitForFunction(async () => {
    const app = await (await caches.open('deeply-app-v2')).keys();
    const data = await (await caches.open('deeply-data-v1')).keys();
    return app.some((r) => r.url.endsWith('_bg.wasm')) && data.filter((r) => r.url.includes('/data/mnist/')).length === 4;
  }, null, { timeout: 30000 });
  const stored = await page.evaluate(async () => (await (await caches.open('deeply-data-v1')).keys()).map((r) => new URL(r.url).pathname));
  assert.ok(stored.every((p) => p.startsWith('/data/')), `${stored}`);
  await server.close();

  // No server: a reload (another lab's link, too) comes from the service worker.
  await page.goto(`${server.url}?lab=cnn&model=small&speed=max&seed=2`);
  await ready(page).catch(async (e) => { await screenshot(page, 'offline-fail'); console.log('# ' + errors.join(' | ')); console.log('# ' + await page.locator('body').innerText()); throw e; });
  await page.click('#play');
  await waitForStep(page, 's > 20', 60000);
  await page.click('#play');
  assert.equal(await page.locator('#ctl-seed').inputValue(), '2');
  assert.deepEqual(await cspViolations(page), []);
  await page.goto(`${server.url}?lab=fit`);
  await ready(page);
  await screenshot(page, 'offline-fit');
  assert.deepEqual(errors.filter((e) => !/ERR_CONNECTION_REFUSED|Failed to load resource/.test(e)), []);
  await page.context().close();
});
