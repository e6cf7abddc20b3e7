// Shared pieces of the browser end-to-end tests: a static server for dist/ and headless Chromium.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.wasm': 'application/wasm',
  '.css': 'text/css', '.json': 'application/json', '.png': 'image/png', '.gz': 'application/gzip',
  '.bin': 'application/octet-stream', '.svg': 'image/svg+xml',
};

export const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
export const DIST = path.join(ROOT, 'dist');
export const OUTPUT = path.join(ROOT, 'tests', 'output');

/** The Content-Security-Policy the serve command sends (Trunk.toml), sent here too. */
export const CSP = fs.readFileSync(path.join(ROOT, 'Trunk.toml'), 'utf8').match(/"Content-Security-Policy" = "([^"]+)"/)[1];

/** Serves dist/ (or another build's folder, for scripts comparing builds) on a free loopback
 *  port with the app's CSP header; resolves to { url, close }. */
export function serveDist(dir = DIST) {
  const root = path.resolve(dir);
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    let file = path.join(root, decodeURIComponent(url.pathname));
    if (!file.startsWith(root)) { res.writeHead(403).end(); return; }
    if (fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, 'index.html');
    fs.readFile(file, (err, data) => {
      if (err) { res.writeHead(404).end('not found'); return; }
      res.writeHead(200, {
        'content-type': TYPES[path.extname(file)] || 'application/octet-stream',
        'content-security-policy': CSP,
        // As the serve command (Trunk.toml): cross-origin isolated, so workers can share memory.
        'cross-origin-opener-policy': 'same-origin',
        'cross-origin-embedder-policy': 'require-corp',
      });
      res.end(data);
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    url: `http://127.0.0.1:${server.address().port}/`,
    // Keep-alive sockets too: a closed server must look like no network (the offline test).
    close: () => new Promise((r) => { server.close(r); server.closeAllConnections(); }),
  })));
}

/** Debian's Chromium, headless, with the flags these machines need (see TOOLCHAIN.md); WebGPU
 *  (SwiftShader) unless `webgpu: false`. */
export function launch({ webgpu = true } = {}) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    chromiumSandbox: false,
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-quic', '--no-first-run', ...(webgpu ? ['--enable-unsafe-webgpu'] : []),
      // For the memory tests: window.gc() and unrounded performance.memory.
      '--js-flags=--expose-gc', '--enable-precise-memory-info'],
  });
}

/** A new page that records console errors and page errors into `errors`. */
export async function openPage(browser, url, errors = []) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  // Every Content-Security-Policy violation of the page is recorded (see cspViolations).
  await context.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  // Tests train at full speed unless the link says otherwise (a first visit is paced, slowly).
  await page.goto(/[?&#]speed=/.test(url) || !url.includes('?lab=') ? url : url.replace('?lab=', '?speed=max&lab='));
  return page;
}

/** Saves a full-page screenshot; every page shot has seen no Content-Security-Policy violation
 * (the app runs with `style-src 'self'`: no inline style attribute anywhere). */
export async function screenshot(page, name) {
  fs.mkdirSync(OUTPUT, { recursive: true });
  await page.screenshot({ path: path.join(OUTPUT, `${name}.png`), fullPage: true });
  assert.deepEqual(await page.evaluate(() => window.__csp ?? []), [], `CSP violations on the page of ${name}.png`);
}

/** The step counter as a number (NaN before the first snapshot). */
export async function stepOf(page) {
  return Number(await page.locator('#stat-step').textContent());
}

/** An f32 from its text (the page's data-value or the CLI's JSON). */
export const f32 = (text) => Math.fround(Number(text));

/** The exact value behind a stat (its data-value attribute). */
export const value = (page, id) => page.locator(id).getAttribute('data-value');

/** Waits until the step counter satisfies `predicate` (a JS expression in `s`). */
export async function waitForStep(page, predicate, timeout = 20000) {
  // `s > 3000`, `s === 0`…: parsed here, because the page's CSP forbids evaluating strings.
  const [, op, n] = predicate.match(/^s\s*(===|>=|<=|>|<)\s*(\d+)$/);
  await page.waitForFunction(([op, n]) => {
    const s = Number(document.querySelector('#stat-step')?.textContent);
    return op === '===' ? s === n : op === '>=' ? s >= n : op === '<=' ? s <= n : op === '>' ? s > n : s < n;
  }, [op, Number(n)], { timeout });
}

/** Waits until the worker is ready and the first snapshot (step 0) is drawn. */
export async function ready(page) {
  await page.waitForSelector('#play:not([disabled])');
  await waitForStep(page, 's === 0');
}

export async function paused(page) {
  await page.waitForFunction(() => document.querySelector('#play').textContent.includes('Play'));
}

/** Plays a link that has `stop=N` and waits until the worker paused at step N. */
export async function playTo(page, n, timeout = 20000) {
  await ready(page);
  await page.click('#play');
  await waitForStep(page, `s === ${n}`, timeout);
  await paused(page);
}

/** Runs `deeply train` natively on a link and returns its final JSON line. */
export function cli(link, steps) {
  const out = execFileSync('cargo', ['run', '-q', '--profile', 'ci', '-p', 'deeply-cli', '--bin', 'deeply', '--', 'train', '--link', link,
    '--steps', String(steps), '--every', String(steps), '--json'], { cwd: ROOT, encoding: 'utf8' });
  const last = out.trim().split('\n').map((l) => JSON.parse(l)).at(-1);
  assert.equal(last.final, true);
  return last;
}

/** Counts a canvas' pixels close to an RGB colour (to prove a chart drew a series). */
export function countColor(page, selector, [r, g, b]) {
  return page.evaluate(({ selector, r, g, b }) => {
    const c = document.querySelector(selector);
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i] - r) < 30 && Math.abs(d[i + 1] - g) < 30 && Math.abs(d[i + 2] - b) < 30) n++;
    return n;
  }, { selector, r, g, b });
}

/** Opens the benchmark page for `workload` and returns the JSON it writes into #bench-results. */
export async function benchInPage(browser, serverUrl, workload, seconds, backend = 'cpu', workers = 1, batch = null) {
  const rows = batch ? `&batch=${batch}` : '';
  const page = await openPage(browser, `${serverUrl}?lab=bench&workload=${workload}&seconds=${seconds}&backend=${backend}&workers=${workers}${rows}`);
  await page.waitForFunction(() => document.querySelector('#bench-results')?.textContent.length > 0, null, { timeout: 120000 });
  const result = JSON.parse(await page.locator('#bench-results').textContent());
  await page.context().close();
  return result;
}

/** `deeply bench <workload> --json`, natively. */
export function benchNative(workload, seconds) {
  return JSON.parse(execFileSync('cargo', ['run', '-q', '--profile', 'ci', '-p', 'deeply-cli', '--bin', 'deeply', '--', 'bench', workload, '--seconds', String(seconds), '--json'],
    { cwd: ROOT, encoding: 'utf8' }));
}

/// Frames per second over 2-second windows while `page` trains (Play pressed here); the best of
/// up to three windows, so one hiccup of a shared CI machine does not decide it. The windows
/// start 3 s into the run: a page on a machine that drops frames slows its redraws down within
/// that time (src/pacing.rs: six half-second doublings from 33 ms to 2 s), and the test
/// measures that steady state, not the adaptation. Also checks
/// that training went on meanwhile, and that drawing added nothing to the page's body: plotters
/// measured each axis label with a `<span>` there (a forced layout per label) until the charts
/// measured text on their canvas (src/components/canvas.rs).
export async function fpsWhileTraining(page) {
  await page.evaluate(() => {
    window.__bodyAdds = 0;
    new MutationObserver((ms) => ms.forEach((m) => { window.__bodyAdds += m.addedNodes.length; })).observe(document.body, { childList: true });
  });
  await page.click('#play');
  await page.waitForFunction(() => Number(document.querySelector('#stat-step').textContent) > 5);
  await page.waitForTimeout(3000);
  const before = Number(await page.locator('#stat-step').textContent());
  const measure = () => page.evaluate(() => new Promise((resolve) => {
    let frames = 0;
    const start = performance.now();
    const tick = (t) => {
      frames++;
      if (t - start < 2000) requestAnimationFrame(tick); else resolve(frames * 1000 / (t - start));
    };
    requestAnimationFrame(tick);
  }));
  let fps = 0;
  for (let i = 0; i < 3 && fps < 55; i++) fps = Math.max(fps, await measure());
  const after = Number(await page.locator('#stat-step').textContent());
  assert.ok(after > before, `training went on meanwhile (${before} → ${after})`);
  assert.equal(await page.evaluate(() => window.__bodyAdds), 0, 'elements added to the body while training (text measured in the page?)');
  return fps;
}

/// Clicks Play the instant it is enabled (before the first snapshot may have arrived) and checks
/// that training starts: a command sent while the lab is starting is queued, never lost.
/// `errors`: the page's console errors so far (`openPage`'s), reported if training does not start.
export async function playAtOnce(page, timeout = 60000, errors = []) {
  await page.waitForSelector('#play:not([disabled])', { timeout });
  await page.click('#play');
  try {
    await waitForStep(page, 's > 0', timeout);
  } catch (e) {
    // What the page showed when training did not start (a rare CI failure left no trace).
    const shown = await page.evaluate(() => ({
      play: document.querySelector('#play')?.textContent,
      step: document.querySelector('#stat-step')?.textContent,
      status: document.querySelector('#status')?.textContent,
      notices: [...document.querySelectorAll('.notice, .error, .fatal')].filter((n) => n.checkVisibility()).map((n) => n.textContent.trim()).slice(0, 5),
    })).catch((why) => `(the page could not be read: ${why})`);
    throw new Error(`${e.message}\nthe page showed: ${JSON.stringify(shown)}; console errors: ${JSON.stringify(errors.slice(0, 5))}`);
  }
}

/** The Content-Security-Policy violations the page has seen. */
export async function cspViolations(page) {
  return page.evaluate(() => window.__csp);
}
