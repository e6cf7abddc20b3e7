// Browser end-to-end test of the guided tours: every lab has one; each step's "Try this" opens the
// config it claims (every key of its link is in the page's share link), marks the step as tried
// (kept in the browser) and shows it as the current step.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serveDist, launch, openPage, screenshot } from './helpers.mjs';

let server, browser;
before(async () => { server = await serveDist(); browser = await launch({ webgpu: false }); });
after(async () => { await browser?.close(); await server?.close(); });

test('each tour step\'s "Try this" sets the config it claims, and progress is kept', async () => {
  for (const lab of ['fit', 'playground', 'cnn', 'batchnorm', 'rnn']) {
    const errors = [];
    const page = await openPage(browser, `${server.url}?lab=${lab}`, errors);
    await page.waitForSelector('#tour');
    const n = await page.locator('[id^=tour-try-]').count();
    assert.ok(n >= 5 && n <= 8, `${lab}: ${n} steps`);
    for (let i = 0; i < n; i++) {
      if ((await page.locator('#tour').getAttribute('open')) === null) await page.click('#tour summary');
      const link = await page.locator(`#tour-try-${i}`).getAttribute('data-link');
      await page.click(`#tour-try-${i}`);
      // The page reloads with the step's link; the step is then the current one.
      await page.waitForSelector(`#tour-step-${i}.current`, { timeout: 30000 });
      await page.waitForFunction(() => document.querySelector('#share-link')?.value.includes('lab='));
      const shared = new URLSearchParams((await page.locator('#share-link').inputValue()).split('?')[1]);
      for (const [k, v] of new URLSearchParams(link)) {
        const got = shared.get(k);
        const same = got === v || (v !== '' && got !== null && Number(got) === Number(v)) || (got !== null && decodeURIComponent(got) === v);
        assert.ok(same, `${lab} step ${i + 1}: ${k}=${v}, the page has ${got}`);
      }
      assert.equal(await page.locator('#notices').count(), 0, `${lab} step ${i + 1}: the link opens without a notice`);
    }
    assert.match(await page.locator('#tour-progress').textContent(), new RegExp(`${n} of ${n} steps tried`));
    if (lab === 'fit') await screenshot(page, 'tour-fit');
    assert.deepEqual(errors.filter((e) => !/net::ERR_ABORTED/.test(e)), [], lab);
    await page.context().close();
  }
});
