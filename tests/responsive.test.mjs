// A page anyone can use: every lab at a 375 × 812 phone (no horizontal scrolling, the controls in
// a drawer) and in dark mode (following the system, or the remembered toggle). Screenshots land
// in tests/output/ (looked at).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serveDist, launch, screenshot } from './helpers.mjs';

const LABS = ['fit', 'playground', 'cnn', 'batchnorm', 'rnn'];
let server, browser;
before(async () => { server = await serveDist(); browser = await launch(); });
after(async () => { await browser?.close(); await server?.close(); });

async function open(url, options) {
  const context = await browser.newContext(options);
  const page = await context.newPage();
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(url);
  return { page, context, errors };
}

// Against the device width, not innerWidth: a mobile browser zooms out to fit wide content, which
// widens innerWidth with it and hid a 816 px wide fit lab from this test.
const overflow = (page) => page.evaluate(() => document.documentElement.scrollWidth - screen.width);

test('at 375 × 812 every page fits the width, and the controls open as a drawer', async () => {
  for (const lab of ['', ...LABS]) {
    const { page, context, errors } = await open(`${server.url}${lab ? `?lab=${lab}` : ''}`, { viewport: { width: 375, height: 812 }, hasTouch: true, isMobile: true });
    await page.waitForSelector(lab ? '#play:not([disabled])' : '.journey, .home, main');
    if (lab) {
      await page.waitForFunction(() => document.querySelector('#stat-step')?.textContent === '0', null, { timeout: 60000 });
      assert.equal(await page.locator('#controls-body').isVisible(), false, `${lab}: the controls start closed`);
      if (await page.locator('#backprop-toggle').count()) {
        // The backprop view, open on a trace, fits too.
        await page.keyboard.press('s');
        await page.click('#backprop-toggle');
        await page.waitForSelector('#vjp-detail');
      }
      await page.click('.drawer-toggle');
      assert.equal(await page.locator('#controls-body').isVisible(), true, `${lab}: the drawer opens`);
      assert.equal(await page.locator('.drawer-toggle').getAttribute('aria-expanded'), 'true');
    }
    await page.waitForTimeout(300);
    assert.ok(await overflow(page) <= 0, `${lab || 'home'}: ${await overflow(page)} px of horizontal scrolling at 375 px`);
    await screenshot(page, `phone-${lab || 'home'}`);
    assert.deepEqual(errors, [], lab);
    await context.close();
  }
});

test('at 375 × 812 the benchmark page, with its table of runs, fits the width', async () => {
  const { page, context, errors } = await open(`${server.url}?lab=bench&workload=w1&seconds=0.3`, { viewport: { width: 375, height: 812 }, hasTouch: true, isMobile: true });
  await page.waitForFunction(() => document.querySelectorAll('#bench-runs tbody tr').length === 1, null, { timeout: 60000 });
  await page.waitForTimeout(300);
  assert.ok(await overflow(page) <= 0, `the benchmark page: ${await overflow(page)} px of horizontal scrolling at 375 px`);
  // The table scrolls inside its box; its title wraps on the page instead of being cut off.
  const title = await page.locator('#bench-runs-title').evaluate((e) => ({ right: e.getBoundingClientRect().right, width: e.scrollWidth - e.clientWidth }));
  assert.ok(title.right <= 375 && title.width <= 0, `the table's title fits: ${JSON.stringify(title)}`);
  assert.equal(await page.locator('#bench-runs').getAttribute('aria-labelledby'), 'bench-runs-title');
  await screenshot(page, 'phone-bench');
  assert.deepEqual(errors, []);
  await context.close();
});

// Between the phone layout (≤ 700 px) and a wide screen, grids of two or three charts, the
// fit lab's planes and the RNN's 17-language confusion matrix once pushed the page wider than
// a 1,024 px laptop or an 800 px tablet.
test('at 800, 1024 and 1280 px wide every page fits the width, trained far enough to fill every panel', async () => {
  for (const lab of ['', ...LABS]) {
    const { page, context, errors } = await open(`${server.url}${lab ? `?lab=${lab}&speed=max` : ''}`, { viewport: { width: 1280, height: 900 } });
    if (lab) {
      await page.waitForSelector('#play:not([disabled])');
      await page.click('#play');
      // Past the RNN lab's first evaluation (step 200): its confusion matrix is drawn.
      await page.waitForFunction(() => Number(document.querySelector('#stat-step')?.textContent) > 230, null, { timeout: 90000 });
      await page.click('#play');
    } else {
      await page.waitForSelector('.journey, .home, main');
    }
    for (const width of [1280, 1024, 800]) {
      await page.setViewportSize({ width, height: 900 });
      await page.waitForTimeout(400);
      const wide = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.ok(wide <= 0, `${lab || 'home'}: ${wide} px of horizontal scrolling at ${width} px`);
    }
    if (lab === 'rnn') await screenshot(page, 'tablet-rnn');
    assert.deepEqual(errors, [], lab);
    await context.close();
  }
});

test('dark mode follows the system, the toggle overrides it and is remembered', async () => {
  const bg = (page) => page.evaluate(() => getComputedStyle(document.documentElement).backgroundColor);
  const theme = (page) => page.evaluate(() => document.documentElement.dataset.theme);
  for (const lab of LABS) {
    const { page, context, errors } = await open(`${server.url}?lab=${lab}&speed=max`, { viewport: { width: 1400, height: 1000 }, colorScheme: 'dark' });
    await page.waitForSelector('#play:not([disabled])');
    assert.equal(await theme(page), 'dark', `${lab} follows the system's dark scheme`);
    await page.click('#play');
    await page.waitForFunction(() => Number(document.querySelector('#stat-step')?.textContent) > 20, null, { timeout: 60000 });
    await page.click('#play');
    await page.waitForTimeout(500);
    await screenshot(page, `dark-${lab}`);
    assert.deepEqual(errors, [], lab);
    await context.close();
  }
  const { page, context } = await open(`${server.url}?lab=fit`, { colorScheme: 'light' });
  await page.waitForSelector('#theme-toggle');
  assert.equal(await theme(page), 'light');
  const light = await bg(page);
  await page.click('#theme-toggle'); // system → dark
  assert.equal(await theme(page), 'dark');
  assert.notEqual(await bg(page), light, 'the page itself turns dark');
  await page.reload();
  await page.waitForSelector('#theme-toggle');
  assert.equal(await theme(page), 'dark', 'the choice is remembered');
  await page.click('#theme-toggle'); // dark → light
  assert.equal(await theme(page), 'light');
  await context.close();
});
