// Browser end-to-end test of the PyTorch export: the button downloads the run as a script with
// the lab's layers, hyper-parameters and (fit, playground, RNN) data.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serveDist, launch, openPage, ready, stepOf } from './helpers.mjs';

let server, browser;
before(async () => { server = await serveDist(); browser = await launch(); });
after(async () => { await browser?.close(); await server?.close(); });

test('every lab exports its run as a PyTorch script: the CNN, fit, playground and RNN labs', async () => {
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
  for (const [link, linear, loss] of [['lab=fit&hidden=5,3&n=80', [[1, 5], [5, 3], [3, 1]], 'mse'],
    ['lab=playground&data=spiral3&hidden=4', [[4, 4], [4, 3]], 'cross_entropy']]) {
    await page.goto(`${server.url}?${link}`);
    await ready(page);
    const { name, text } = await downloaded(page, '#export-pytorch');
    assert.match(name, /^deeply-(fit|playground)-step0\.py$/);
    const hyper = JSON.parse(text.match(/HYPER = json\.loads\(r'''([\s\S]*?)'''\)/)[1]);
    const data = JSON.parse(text.match(/DATA = json\.loads\(r'''([\s\S]*?)'''\)/)[1]);
    const layers = JSON.parse(text.match(/LAYERS = json\.loads\(r'''([\s\S]*?)'''\)/)[1]);
    assert.equal(hyper.loss, loss, link);
    assert.equal(hyper.data, 'inline');
    assert.deepEqual(layers.filter((l) => l.type === 'Linear').map((l) => [l.in, l.out]), linear, link);
    assert.equal(data.train.shape[1], linear[0][0], 'one input column per feature');
  }
  // The RNN lab: its recurrent layer and its sequences (symbol indices, a language per name).
  await page.goto(`${server.url}?lab=rnn&hidden=32&truncate=4`);
  await ready(page);
  const rnn = await downloaded(page, '#export-pytorch');
  assert.match(rnn.name, /^deeply-rnn-step0\.py$/);
  const rnnHyper = JSON.parse(rnn.text.match(/HYPER = json\.loads\(r'''([\s\S]*?)'''\)/)[1]);
  const rnnLayers = JSON.parse(rnn.text.match(/LAYERS = json\.loads\(r'''([\s\S]*?)'''\)/)[1]);
  const rnnData = JSON.parse(rnn.text.match(/DATA = json\.loads\(r'''([\s\S]*?)'''\)/)[1]);
  assert.equal(rnnHyper.data, 'sequences');
  assert.deepEqual([rnnLayers[0].type, rnnLayers[0].in, rnnLayers[0].hidden, rnnLayers[0].truncate], ['RNN', 59, 32, 4]);
  assert.deepEqual([rnnLayers[1].type, rnnLayers[1].in, rnnLayers[1].out], ['Linear', 32, 17]);
  assert.equal(rnnData.train.inputs.length, rnnData.train.classes.length);
  assert.ok(rnnData.train.inputs.length > 15000, `${rnnData.train.inputs.length} training names`);
  await page.context().close();
});

async function downloaded(page, button) {
  const [download] = await Promise.all([page.waitForEvent('download'), page.click(button)]);
  const chunks = [];
  for await (const c of await download.createReadStream()) chunks.push(c);
  return { name: download.suggestedFilename(), text: Buffer.concat(chunks).toString('utf8') };
}

test('Save run → Open run restores every lab\'s settings, step and weights; a bad or foreign file is refused', async () => {
  const links = ['lab=fit&lr=0.05&seed=9&stop=40', 'lab=cnn&model=small&seed=9&stop=40', 'lab=batchnorm&seed=9&stop=40', 'lab=rnn&seed=9&stop=40'];
  for (const link of links) {
    const lab = link.match(/lab=(\w+)/)[1];
    const errors = [];
    const page = await openPage(browser, `${server.url}?${link}`, errors);
    await ready(page);
    await page.click('#play');
    await page.waitForFunction(() => document.querySelector('#stat-step')?.textContent === '40', null, { timeout: 60000 });
    await page.waitForFunction(() => document.querySelector('#play').textContent.includes('Play'));
    const saved = await downloaded(page, '#export-run');
    assert.equal(saved.name, `deeply-${lab}-step40.json`);
    const run = JSON.parse(saved.text);
    assert.equal(run.format, 'deeply-run-1');
    assert.equal(run.networks.length, lab === 'batchnorm' ? 2 : 1);
    // A fresh page of the lab with other settings opens the file: the run's settings and step.
    await page.goto(`${server.url}?lab=${lab}&seed=1&speed=max`);
    await ready(page);
    await page.setInputFiles('#import-run', { name: saved.name, mimeType: 'application/json', buffer: Buffer.from(saved.text) });
    await page.waitForFunction(() => document.querySelector('#stat-step')?.textContent === '40', null, { timeout: 60000 });
    assert.match(await page.locator('#share-link').inputValue(), /seed=9/);
    const again = await downloaded(page, '#export-run');
    assert.equal(again.text, saved.text, `${lab}: the same link, counters and weights, bit for bit`);
    // It trains on (a stop condition met at the saved step pauses once; Play again goes past it).
    for (let i = 0; i < 3 && await stepOf(page) <= 40; i++) {
      await page.click('#play');
      await page.waitForTimeout(1500);
    }
    assert.ok(await stepOf(page) > 40, `${lab}: the opened run trains on (${await page.locator('#status').textContent()} ${await page.locator('#play').textContent()})`);
    assert.deepEqual(errors, [], lab);
    if (lab === 'fit') {
      if ((await page.locator('#play').textContent()).includes('Pause')) await page.click('#play');
      await page.setInputFiles('#import-run', { name: 'x.json', mimeType: 'application/json', buffer: Buffer.from('{"format": 1}') });
      await page.waitForSelector('#notices');
      assert.match(await page.locator('#notices').textContent(), /not a Deeply run/);
      await page.click('#notices button');
      const cnnRun = JSON.stringify({ ...JSON.parse(saved.text), link: 'lab=cnn' });
      await page.setInputFiles('#import-run', { name: 'y.json', mimeType: 'application/json', buffer: Buffer.from(cnnRun) });
      await page.waitForFunction(() => /open it on that lab/.test(document.querySelector('#notices')?.textContent));
    }
    await page.context().close();
  }
});
