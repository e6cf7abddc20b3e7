// Accessibility: axe-core (from npm) on the home page and every lab, idle and while training —
// no serious or critical violation.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { serveDist, launch, openPage, ready } from './helpers.mjs';

const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
let server, browser;
before(async () => { server = await serveDist(); browser = await launch(); });
after(async () => { await browser?.close(); await server?.close(); });

/** Serious and critical violations on the page now: "rule (n): first targets". */
async function violations(page) {
  if (!(await page.evaluate(() => typeof window.axe !== 'undefined'))) await page.evaluate(AXE);
  const found = await page.evaluate(async () => (await window.axe.run(document, { resultTypes: ['violations'] })).violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.nodes.length}): ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`));
  return found;
}

test('the home page has no serious or critical accessibility violation', async () => {
  const page = await openPage(browser, server.url);
  await page.waitForSelector('#journey .journey-card');
  assert.deepEqual(await violations(page), []);
  await page.context().close();
});

for (const lab of ['fit', 'playground', 'cnn', 'batchnorm', 'rnn']) {
  test(`lab=${lab}: no serious or critical accessibility violation, idle and while training`, async () => {
    const page = await openPage(browser, `${server.url}?lab=${lab}&speed=max`);
    await ready(page);
    assert.deepEqual(await violations(page), [], 'idle');
    await page.click('#play');
    await page.waitForTimeout(2500);
    assert.deepEqual(await violations(page), [], 'training');
    await page.click('#play');
    if (await page.locator('#backprop-toggle').count()) {
      // The backprop view, open on a trace.
      await page.click('#backprop-toggle');
      await page.waitForSelector('#vjp-detail');
      assert.deepEqual(await violations(page), [], 'backprop view open');
    }
    await page.context().close();
  });
}

test('every control select is wide enough for its longest option', async () => {
  for (const lab of ['fit', 'playground', 'cnn', 'batchnorm', 'rnn']) {
    const page = await openPage(browser, `${server.url}?lab=${lab}`);
    await ready(page);
    const cut = await page.evaluate(() => {
      const ctx = document.createElement('canvas').getContext('2d');
      return [...document.querySelectorAll('aside.controls select')].filter((s) => s.offsetParent !== null).flatMap((s) => {
        ctx.font = getComputedStyle(s).font;
        // The text box is the select's width less its padding and the arrow (~24 px).
        const room = s.clientWidth - 24;
        return [...s.options].filter((o) => ctx.measureText(o.text).width > room).map((o) => `${s.id}: "${o.text}"`);
      });
    });
    assert.deepEqual(cut, [], `lab=${lab}: options cut off`);
    await page.context().close();
  }
});

test('dark mode and a 375 px phone keep every lab free of serious or critical violations (contrast included)', async () => {
  for (const [options, what] of [[{ colorScheme: 'dark', viewport: { width: 1400, height: 1000 } }, 'dark'], [{ viewport: { width: 375, height: 812 }, isMobile: true }, 'phone']]) {
    for (const lab of ['fit', 'playground', 'cnn', 'batchnorm', 'rnn']) {
      const context = await browser.newContext(options);
      const page = await context.newPage();
      await page.goto(`${server.url}?lab=${lab}&speed=max`);
      await ready(page);
      assert.deepEqual(await violations(page), [], `${lab}, ${what}`);
      await context.close();
    }
  }
});

// Panels that appear only after training: a confusion matrix wider than a phone scrolls sideways
// inside its card, so that region must be reachable by keyboard (axe's
// scrollable-region-focusable: it is focusable and named); the Batch Norm lab's comparison
// figures, shown after its first evaluation, keep their contrast in dark mode.
test('trained past an evaluation — CNN and RNN on a phone, Batch Norm in dark mode — no serious or critical violation', async () => {
  const phone = { viewport: { width: 375, height: 812 }, isMobile: true };
  const dark = { colorScheme: 'dark', viewport: { width: 1400, height: 1000 } };
  for (const [lab, options, what] of [['cnn', phone, 'phone'], ['rnn', phone, 'phone'], ['batchnorm', dark, 'dark']]) {
    const context = await browser.newContext(options);
    const page = await context.newPage();
    await page.goto(`${server.url}?lab=${lab}&speed=max&eval=20&stop=40`);
    await ready(page);
    await page.click('#play');
    await page.waitForFunction(() => document.querySelector('#stat-step')?.textContent === '40', null, { timeout: 90000 });
    if (lab === 'batchnorm') {
      await page.waitForFunction(() => Number(document.querySelector('#diff-bn')?.dataset.value) > 0, null, { timeout: 30000 });
    } else {
      await page.waitForFunction(() => document.querySelector('#confusion td'), null, { timeout: 30000 });
      const scroller = page.locator('.table-scroll');
      assert.ok(await scroller.evaluate((e) => e.scrollWidth > e.clientWidth), `${lab}: the matrix is wider than the phone and scrolls`);
    }
    assert.deepEqual(await violations(page), [], `${lab}, trained, ${what}`);
    await context.close();
  }
});

test('every control says why you would change it (its tooltip)', async () => {
  for (const lab of ['fit', 'playground', 'cnn', 'batchnorm', 'rnn']) {
    const page = await openPage(browser, `${server.url}?lab=${lab}`);
    await ready(page);
    const bare = await page.evaluate(() => [...document.querySelectorAll('.controls label.field')]
      .filter((l) => l.offsetParent !== null && (l.getAttribute('title') || '').length < 25)
      .map((l) => l.textContent.trim().slice(0, 40)));
    assert.deepEqual(bare, [], `${lab}: controls without a why`);
    // The headline losses say what they measure in this lab (all points, or at evaluations).
    const trainHelp = await page.locator('#stat-train-loss').evaluate((e) => e.parentElement.title);
    assert.match(trainHelp, { cnn: /since the last evaluation/, rnn: /since the last evaluation/, batchnorm: /BN net's/ }[lab] ?? /all training points/, lab);
    await page.context().close();
  }
});
