// Runs a benchmark workload in headless Chromium's worker and prints its JSON:
//   node scripts/bench-browser.mjs w3 [seconds]     (after `trunk build --release`)
import { serveDist, launch, openPage } from '../tests/helpers.mjs';

const [workload = 'w1', seconds = '3'] = process.argv.slice(2);
const server = await serveDist();
const browser = await launch();
try {
  const page = await openPage(browser, `${server.url}?lab=bench&workload=${workload}&seconds=${seconds}`);
  await page.waitForFunction(() => document.querySelector('#bench-results')?.textContent.length > 0, null, { timeout: 300000 });
  console.log(await page.locator('#bench-results').textContent());
} finally {
  await browser.close();
  await server.close();
}
