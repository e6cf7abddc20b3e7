import { serveDist, launch, openPage, screenshot } from './helpers.mjs';
const srv = await serveDist(); const b = await launch(); const errors = [];
const p = await openPage(b, srv.url + (process.argv[2] || '?lab=fit'), errors);
await p.waitForTimeout(1500);
await p.click('#play'); await p.waitForTimeout(Number(process.argv[3] || 3000));
await screenshot(p, 'manual'); console.log('errors', errors, await p.locator('#stat-step').textContent());
await b.close(); await srv.close();
