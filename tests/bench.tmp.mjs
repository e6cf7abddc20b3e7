import { serveDist, launch, openPage } from './helpers.mjs';
const server = await serveDist();
const browser = await launch();
const page = await openPage(browser, server.url + `?lab=bench&workload=${process.argv[2] || 'w3'}&seconds=${process.argv[3] || 4}`);
await page.waitForFunction(() => document.querySelector('#bench-results')?.textContent.length > 0, null, { timeout: 120000 });
console.log(await page.locator('#bench-results').textContent());
await browser.close(); await server.close();
