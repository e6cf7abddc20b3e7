// Browser end-to-end test of the backprop view (fit and playground): after a run paused at a step,
// every layer's norms and one example's numbers equal what the engine computes natively for that
// mini-batch (`deeply vjp`, bit for bit); another example and another layer follow a click; the
// view leaves training untouched; before the first step it says why there is nothing to trace.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { serveDist, launch, openPage, playTo, ready, value, f32, ROOT, screenshot } from './helpers.mjs';

let server, browser;
before(async () => { server = await serveDist(); browser = await launch({ webgpu: false }); });
after(async () => { await browser?.close(); await server?.close(); });

function nativeTrace(link, steps, example) {
  const out = execFileSync('cargo', ['run', '-q', '--profile', 'ci', '-p', 'deeply-cli', '--bin', 'deeply', '--', 'vjp', '--link', link,
    '--steps', String(steps), '--example', String(example)], { cwd: ROOT, encoding: 'utf8' });
  return JSON.parse(out);
}

const nums = (text) => (text === '' ? [] : text.split(',').map(f32));

/** Waits until the view shows a trace of `step` (and, when given, of `example`). */
async function traced(page, step, example = 0) {
  await page.waitForFunction(([s, e]) => {
    const el = document.querySelector('#vjp-summary');
    return el?.getAttribute('data-step') === String(s) && el?.getAttribute('data-example') === String(e);
  }, [step, example]);
}

async function checkAgainst(page, want, example) {
  for (const [i, layer] of want.layers.entries()) {
    const card = page.locator(`#vjp-layer-${i}`);
    for (const [attr, key] of [['data-x-norm', 'x_norm'], ['data-y-norm', 'y_norm'], ['data-dy-norm', 'dy_norm'], ['data-dx-norm', 'dx_norm']]) {
      assert.equal(f32(await card.getAttribute(attr)), f32(layer[key]), `layer ${i} (${layer.name}) ${key}`);
    }
    const grads = (await card.getAttribute('data-grads')).split(';').filter(Boolean).map((g) => g.split(':'));
    assert.deepEqual(grads.map(([k, v]) => [k, f32(v)]), layer.grad_norms.map(([k, v]) => [k, f32(v)]), `layer ${i} gradient norms`);
    await card.click();
    await page.waitForFunction((name) => document.querySelector('#vjp-detail h4')?.textContent.startsWith(name), layer.name);
    for (const key of ['x', 'y', 'dy', 'dx']) {
      assert.deepEqual(nums(await page.locator(`#vjp-${key}`).getAttribute('data-values')), layer[key].map(f32), `layer ${i} ${key} of example ${example}`);
    }
  }
}

test('the fit lab traces its mini-batch exactly as the engine does', async () => {
  const errors = [];
  const link = 'lab=fit&hidden=6,5&act=tanh&bs=8&lr=0.05&stop=37';
  const page = await openPage(browser, `${server.url}?${link}`, errors);
  await ready(page);
  await page.click('#backprop-toggle');
  await page.waitForSelector('#vjp-error');
  assert.match(await page.locator('#vjp-error').textContent(), /train a step first/);
  await playTo(page, 37);
  await traced(page, 37);
  const want = nativeTrace(link, 37, 0);
  assert.equal(f32(await page.locator('#vjp-summary').getAttribute('data-loss')), f32(want.loss), 'the batch loss');
  assert.equal(want.layers.length, 5, 'dense, tanh, dense, tanh, dense');
  assert.equal(await page.locator('.vjp-layer[id^="vjp-layer-"]').count(), 5);
  await checkAgainst(page, want, 0);
  await page.locator('#vjp-layer-2').click();
  await screenshot(page, 'backprop-fit');

  // Another example of the same batch.
  await page.fill('#vjp-example', '5');
  await page.locator('#vjp-example').dispatchEvent('change');
  const five = nativeTrace(link, 37, 5);
  await traced(page, 37, 5);
  await checkAgainst(page, five, 5);

  // The view traced a copy: the run's own loss is the CLI's, as if nobody had looked.
  const loss = await value(page, '#stat-loss');
  const native = JSON.parse(execFileSync('cargo', ['run', '-q', '--profile', 'ci', '-p', 'deeply-cli', '--bin', 'deeply', '--', 'train', '--link', link,
    '--steps', '37', '--every', '37', '--json'], { cwd: ROOT, encoding: 'utf8' }).trim().split('\n').at(-1));
  assert.equal(f32(native.loss), f32(loss));
  assert.deepEqual(errors, []);
  await page.context().close();
});

test('the playground traces a classifier, dropout included', async () => {
  const errors = [];
  const link = 'lab=playground&data=spiral3&hidden=6,4&dropout=0.2&bs=10&stop=25';
  const page = await openPage(browser, `${server.url}?${link}`, errors);
  await ready(page);
  await page.click('#backprop-toggle');
  await playTo(page, 25);
  await traced(page, 25);
  const want = nativeTrace(link, 25, 0);
  assert.match(await page.locator('#vjp-loss').textContent(), /softmax/);
  assert.ok(want.layers.some((l) => l.name.startsWith('dropout')), 'a dropout layer in the chain');
  await checkAgainst(page, want, 0);
  await screenshot(page, 'backprop-playground');
  assert.deepEqual(errors, []);
  await page.context().close();
});
