// Browser end-to-end test of the PyTorch export: the button downloads the run as a script with
// the lab's layers and hyper-parameters; labs without an export show no button.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serveDist, launch, openPage, ready } from './helpers.mjs';

let server, browser;
before(async () => { server = await serveDist(); browser = await launch(); });
after(async () => { await browser?.close(); await server?.close(); });

test('the CNN lab exports its run as a PyTorch script; the fit lab offers no export', async () => {
  const errors = [];
  const page = await openPage(browser, `${server.url}?lab=cnn&model=lenet5&lr=0.02`, errors);
  await ready(page);
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-pytorch')]);
  assert.match(download.suggestedFilename(), /^deeply-cnn-step0\.py$/);
  const chunks = [];
  for await (const c of await download.createReadStream()) chunks.push(c);
  const script = Buffer.concat(chunks).toString('utf8');
  const hyper = JSON.parse(script.match(/HYPER = json\.loads\(r'''([\s\S]*?)'''\)/)[1]);
  const layers = JSON.parse(script.match(/LAYERS = json\.loads\(r'''([\s\S]*?)'''\)/)[1]);
  assert.equal(hyper.lr, 0.02);
  assert.deepEqual(layers.filter((l) => l.type === 'Linear').map((l) => [l.in, l.out]), [[400, 120], [120, 84], [84, 10]]);
  assert.ok(script.includes('DistributedDataParallel') && script.includes('if __name__ == "__main__":'));
  assert.deepEqual(errors, []);
  await page.goto(`${server.url}?lab=fit`);
  await ready(page);
  assert.equal(await page.locator('#export-pytorch').count(), 0);
  await page.context().close();
});
