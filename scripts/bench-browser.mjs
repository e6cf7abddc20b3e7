// Runs a benchmark workload in headless Chromium's worker and prints its JSON:
//   node scripts/bench-browser.mjs w3 [seconds] [workers] [batch]   (after `trunk build --release`;
//   DIST=<dir> times another build, e.g. one made with `trunk build --release --dist <dir>`)
import { serveDist, launch, benchInPage } from '../tests/helpers.mjs';

const [workload = 'w1', seconds = '3', workers = '1', batch = null] = process.argv.slice(2);
const server = await serveDist(process.env.DIST);
const browser = await launch();
try {
  console.log(JSON.stringify(await benchInPage(browser, server.url, workload, seconds, 'cpu', workers, batch)));
} finally {
  await browser.close();
  await server.close();
}
